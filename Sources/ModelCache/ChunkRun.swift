import ModelCacheCore

/// The actor that owns one download's `ChunkScheduler`: workers ask it for work and report outcomes.
actor ChunkRun {
    private(set) var scheduler: ChunkScheduler
    private(set) var digests: [Int: BlobDigest]
    private var lastError: [Int: any Error] = [:]
    private let start = ContinuousClock.now

    init(scheduler: ChunkScheduler, digests: [Int: BlobDigest]) {
        self.scheduler = scheduler
        self.digests = digests
    }

    nonisolated func elapsed(since instant: ContinuousClock.Instant) -> Duration { instant - start }
    var now: Duration { ContinuousClock.now - start }
    func instant(at d: Duration) -> ContinuousClock.Instant { start + d }

    /// Bumped on every change that may give an idle worker something to do.
    private(set) var generation = 0

    func addSource(_ id: SourceID, has: ChunkSet?) { scheduler.addSource(id, has: has); generation += 1 }
    func updatePeer(_ id: SourceID, has: ChunkSet, claims: ChunkSet, swarmID: String? = nil) {
        scheduler.updatePeer(id, has: has, claims: claims, swarmID: swarmID)
        generation += 1
    }

    /// Waits until something changed (or `limit` passed): idle workers do not rescan for nothing.
    func waitForChange(since g: Int, limit: Duration = .milliseconds(200)) async {
        let deadline = ContinuousClock.now + limit
        while generation == g && ContinuousClock.now < deadline && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    func next(for id: SourceID) throws -> ChunkScheduler.Decision {
        let d = scheduler.next(for: id, now: now)
        if d == .idle || d == .retire { try checkProgress() }
        return d
    }

    func verified(chunk: Int, digest: BlobDigest, from id: SourceID) throws {
        digests[chunk] = digest
        generation += 1
        do { try scheduler.report(.verified, chunk: chunk, from: id, now: now) } catch { throw translate(error) }
    }

    func failed(chunk: Int, from id: SourceID, corrupt: Bool, error: any Error) throws {
        lastError[chunk] = error
        generation += 1
        do { try scheduler.report(corrupt ? .corrupt : .failed, chunk: chunk, from: id, now: now) } catch { throw translate(error) }
    }

    func release(chunk: Int, from id: SourceID) { scheduler.release(chunk: chunk, from: id); generation += 1 }

    func checkProgress() throws {
        do { try scheduler.checkProgressPossible() } catch { throw translate(error) }
    }

    private func translate(_ f: ChunkScheduler.Failure) -> any Error {
        switch f {
        case .chunkExhausted(let chunk, let attempts):
            return lastError[chunk] ?? ModelCacheError.noSource("chunk \(chunk) failed \(attempts) times")
        case .noSourceFor(let chunks):
            let shown = chunks.prefix(5).map(String.init).joined(separator: ", ")
            return ModelCacheError.noSource("no reachable source holds chunk(s) \(shown)\(chunks.count > 5 ? ", …" : "")")
        }
    }
}
