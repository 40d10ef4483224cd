import CLinuxIO
import Foundation
import ModelCacheCore
import Synchronization

/// The chunk digests of a one-stream download, taken on a thread of its own from the file (the page cache) as each
/// chunk's last byte is written, so the stream's reader only reads the socket and writes the file. With one
/// connection that reader was the download's critical path: socket, chunk SHA-256 and write in turn on one thread
/// kept the two cores 1.4 busy.
///
/// Each chunk is hashed from what the file holds, then recorded (`record`: the journal and the download's verified
/// set); its digest is kept for the manifest. The first failure (a read or a journal write) stops the thread and is
/// thrown by the next `drain()`.
final class ChunkReadBackHasher: Sendable {
    private struct State {
        var queue: [Int] = []
        var stopped = false
        var failure: (any Error)?
        var digests: [Int: BlobDigest] = [:]
        /// Chunks queued and not yet hashed (or given up on).
        var pending = 0
    }

    private let state = Mutex(State())
    private let queued = DispatchSemaphore(value: 0)
    private let changes = ChangeSignal()
    private let partial: PartialDownload
    private let record: @Sendable (Int, BlobDigest) throws -> Void

    init(partial: PartialDownload, record: @escaping @Sendable (Int, BlobDigest) throws -> Void) {
        self.partial = partial
        self.record = record
        Thread { [self] in run() }.start()
    }

    /// Queues a chunk whose every byte is in the file.
    func hash(chunk: Int) {
        state.withLock {
            $0.queue.append(chunk)
            $0.pending += 1
        }
        queued.signal()
    }

    /// Throws the first failure, if there was one (the stream stops at once instead of at its end).
    func check() throws {
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }

    /// Waits until every queued chunk is hashed and recorded; returns the digests so far, or throws the first failure.
    func drain() async throws -> [Int: BlobDigest] {
        while true {
            let seen = changes.generation
            let (pending, failure, digests) = state.withLock { ($0.pending, $0.failure, $0.digests) }
            if let failure { throw failure }
            if pending == 0 { return digests }
            try Task.checkCancellation()
            await changes.wait(since: seen)
        }
    }

    /// Ends the thread once the chunk it is hashing is done (the chunks still queued are dropped). Call once, at the
    /// end of the download whatever its outcome.
    func stop() {
        state.withLock { $0.stopped = true }
        queued.signal()
    }

    private func run() {
        _ = modelcache_name_this_thread("mc-chunk-hash")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: FileHasher.bufferSize, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            queued.wait()
            let next: Int? = state.withLock { s in
                if s.stopped || s.failure != nil || s.queue.isEmpty { return nil }
                return s.queue.removeFirst()
            }
            guard let chunk = next else {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            do {
                let digest = try partial.sha256(ofChunk: chunk, buffer: buffer)
                try record(chunk, digest)
                state.withLock {
                    $0.digests[chunk] = digest
                    $0.pending -= 1
                }
            } catch {
                state.withLock { $0.failure = error }
            }
            changes.notify()
        }
    }
}
