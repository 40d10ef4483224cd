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

    /// Notified on every change that may give an idle worker something to do.
    private let changes = ChangeSignal()
    var generation: UInt64 { changes.generation }

    func addSource(_ id: SourceID, has: ChunkSet?) { scheduler.addSource(id, has: has); changes.notify() }
    func updatePeer(_ id: SourceID, has: ChunkSet, claims: ChunkSet, swarmID: String? = nil) {
        scheduler.updatePeer(id, has: has, claims: claims, swarmID: swarmID)
        changes.notify()
    }

    /// Waits until something changed: idle workers do not rescan for nothing. `limit` is a safety net only: the
    /// scheduler's answers also depend on time (backoffs, slow-chunk stealing), which notifies nobody.
    nonisolated func waitForChange(since g: UInt64, limit: Duration = .milliseconds(200)) async {
        await changes.wait(since: g, atMost: limit)
    }

    func next(for id: SourceID) throws -> ChunkScheduler.Decision {
        let d = scheduler.next(for: id, now: now)
        if d == .idle || d == .retire { try checkProgress() }
        return d
    }

    func verified(chunk: Int, digest: BlobDigest, from id: SourceID) throws {
        digests[chunk] = digest
        changes.notify()
        do { try scheduler.report(.verified, chunk: chunk, from: id, now: now) } catch { throw translate(error) }
    }

    func failed(chunk: Int, from id: SourceID, corrupt: Bool, error: any Error) throws {
        lastError[chunk] = error
        changes.notify()
        do { try scheduler.report(corrupt ? .corrupt : .failed, chunk: chunk, from: id, now: now) } catch { throw translate(error) }
    }

    func release(chunk: Int, from id: SourceID) { scheduler.release(chunk: chunk, from: id); changes.notify() }

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
