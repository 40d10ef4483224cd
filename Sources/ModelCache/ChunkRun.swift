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

    func addSource(_ id: SourceID, has: ChunkSet?) { scheduler.addSource(id, has: has) }

    func next(for id: SourceID) throws -> ChunkScheduler.Decision {
        let d = scheduler.next(for: id, now: now)
        if d == .idle || d == .retire { try checkProgress() }
        return d
    }

    func verified(chunk: Int, digest: BlobDigest, from id: SourceID) throws {
        digests[chunk] = digest
        do { try scheduler.report(.verified, chunk: chunk, from: id, now: now) } catch { throw translate(error) }
    }

    func failed(chunk: Int, from id: SourceID, corrupt: Bool, error: any Error) throws {
        lastError[chunk] = error
        do { try scheduler.report(corrupt ? .corrupt : .failed, chunk: chunk, from: id, now: now) } catch { throw translate(error) }
    }

    func release(chunk: Int, from id: SourceID) { scheduler.release(chunk: chunk, from: id) }

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
