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
///
/// With `wholeInOrder` (a fresh download streamed from its first byte), each block read for a chunk's digest also goes,
/// in order, to a second thread that hashes the whole file (`WholeFileHasher`, as `FileHasher.manifest` does): one
/// read of each byte for both digests, instead of a second read (or a copy held in memory) for the whole-blob hasher.
final class ChunkReadBackHasher: Sendable {
    private struct State {
        var queue: [Int] = []
        var stopped = false
        var failure: (any Error)?
        var digests: [Int: BlobDigest] = [:]
        /// Chunks queued and not yet hashed (or given up on).
        var pending = 0
        /// The next chunk the whole-file digest needs; false once a chunk came out of order (the digest is then not
        /// given); `wholeEnded` once the whole-file thread was told to finish (exactly once).
        var wholeNext = 0
        var wholeInOrder = true
        var wholeEnded = false
    }

    private let state = Mutex(State())
    private let queued = DispatchSemaphore(value: 0)
    private let changes = ChangeSignal()
    private let partial: PartialDownload
    private let record: @Sendable (Int, BlobDigest) throws -> Void
    private let whole: WholeFileHasher?

    init(partial: PartialDownload, wholeInOrder: Bool = false, record: @escaping @Sendable (Int, BlobDigest) throws -> Void) {
        self.partial = partial
        self.record = record
        self.whole = wholeInOrder ? WholeFileHasher() : nil
        Thread { [self] in run() }.start()
    }

    /// The whole file's digest, when every chunk was queued in order from the first and hashed; nil otherwise (and
    /// without `wholeInOrder`). Call after `drain()`, once.
    func wholeDigest() async -> BlobDigest? {
        guard let whole else { return nil }
        let count = partial.layout.count
        // A failure half-way through a chunk left part of it in the whole-file digest: not valid either.
        let valid: Bool? = state.withLock { s in
            if s.wholeEnded { return nil }
            s.wholeEnded = true
            return s.failure == nil && s.wholeInOrder && s.wholeNext == count
        }
        guard let valid else { return nil }
        // Waits for the blocks still queued on the whole-file thread (at most four of 1 MiB).
        let digest = try? await OwnThread.run { whole.finish() }
        return valid ? digest : nil
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
        defer {
            buffer.deallocate()
            // The whole-file thread ends with this one, if nobody asked for its digest.
            if let whole, state.withLock({ s in defer { s.wholeEnded = true }; return !s.wholeEnded }) { _ = whole.finish() }
        }
        while true {
            queued.wait()
            // The next chunk, and whether it goes to the whole-file digest (the next one it needs, none skipped).
            let next: (chunk: Int, feedsWhole: Bool)? = state.withLock { s in
                if s.stopped || s.failure != nil || s.queue.isEmpty { return nil }
                let chunk = s.queue.removeFirst()
                if s.wholeNext != chunk { s.wholeInOrder = false }
                return (chunk, whole != nil && s.wholeInOrder)
            }
            guard let (chunk, feedsWhole) = next else {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            do {
                let digest = if let whole, feedsWhole {
                    try partial.sha256(ofChunk: chunk, feeding: whole)
                } else {
                    try partial.sha256(ofChunk: chunk, buffer: buffer)
                }
                try record(chunk, digest)
                state.withLock {
                    $0.digests[chunk] = digest
                    $0.pending -= 1
                    $0.wholeNext = chunk + 1
                }
            } catch {
                state.withLock { $0.failure = error }
            }
            changes.notify()
        }
    }
}
