import ModelCacheCore
import Synchronization

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

    func updatePeer(_ id: SourceID, has: ChunkSet, claims: ChunkSet, swarmID: String? = nil) {
        scheduler.updatePeer(id, has: has, claims: claims, swarmID: swarmID)
        changes.notify()
    }

    /// Waits until something changed: idle workers do not rescan for nothing. `limit` is a safety net only: the
    /// scheduler's answers also depend on time (backoffs, slow-chunk stealing), which notifies nobody.
    nonisolated func waitForChange(since g: UInt64, limit: Duration = .milliseconds(200)) async {
        await changes.wait(since: g, atMost: limit)
    }

    /// Bytes so far of each chunk's fetch, written by the workers' streams without a hop onto the actor and folded
    /// into the scheduler when it next decides.
    private let liveBytes = Mutex<[Int: (SourceID, Int64)]>([:])

    /// Bytes so far of a chunk's fetch (the end-game's estimate of when it ends).
    nonisolated func noteBytes(chunk: Int, from id: SourceID, bytes: Int64) {
        liveBytes.withLock { $0[chunk] = (id, bytes) }
    }

    func next(for id: SourceID) throws -> ChunkScheduler.Decision {
        let live: [Int: (SourceID, Int64)] = liveBytes.withLock { l in
            let all = l
            l.removeAll(keepingCapacity: true)
            return all
        }
        for (chunk, entry) in live { scheduler.progress(chunk: chunk, from: entry.0, bytes: entry.1) }
        let d = scheduler.next(for: id, now: now)
        if d == .idle || d == .retire { try checkProgress() }
        return d
    }

    /// Counts a verified copy of `chunk` from `id`. Returns false when another copy already won (this one is to be
    /// discarded, not recorded); a copy still racing against this one is then cancelled by its worker's watch.
    func verified(chunk: Int, digest: BlobDigest, from id: SourceID) throws -> Bool {
        guard scheduler.isFetching(chunk: chunk, by: id) else { return false }
        digests[chunk] = digest
        changes.notify()
        do { try scheduler.report(.verified, chunk: chunk, from: id, now: now) } catch { throw translate(error) }
        return true
    }

    func isFetching(chunk: Int, by id: SourceID) -> Bool { scheduler.isFetching(chunk: chunk, by: id) }

    /// Returns once `id` is no longer fetching `chunk` (another copy won), or when cancelled.
    nonisolated func waitUntilLost(chunk: Int, by id: SourceID) async {
        while !Task.isCancelled {
            let g = await generation
            if await !isFetching(chunk: chunk, by: id) { return }
            await waitForChange(since: g, limit: .seconds(1))
        }
    }

    func failed(chunk: Int, from id: SourceID, corrupt: Bool, error: any Error) throws {
        lastError[chunk] = error
        changes.notify()
        do { try scheduler.report(corrupt ? .corrupt : .failed, chunk: chunk, from: id, now: now) } catch { throw translate(error) }
    }

    /// A span's worker reached `chunk`; false when another source took it (the span ends there).
    func begin(chunk: Int, span: Int, from id: SourceID) -> Bool {
        scheduler.begin(chunk: chunk, span: span, from: id, now: now)
    }

    /// The chunks a span did not reach go back.
    func releaseQueued(span: Int, from id: SourceID) {
        scheduler.releaseQueued(span: span, from: id)
        changes.notify()
    }

    func release(chunk: Int, from id: SourceID) { scheduler.release(chunk: chunk, from: id, now: now); changes.notify() }

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
