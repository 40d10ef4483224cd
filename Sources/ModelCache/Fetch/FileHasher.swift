import Crypto
import Foundation
import Synchronization
import ModelCacheCore

/// Hashes a file (or a range of it) with SHA-256, reading 1 MiB at a time.
public enum FileHasher {
    static let bufferSize = 1 << 20

    public static func sha256(of file: PosixFile, range: Range<Int64>) throws(ModelCacheError) -> BlobDigest {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 4096)
        defer { buffer.deallocate() }
        return try sha256(of: file, range: range, buffer: buffer)
    }

    /// The same, reading through `buffer`.
    static func sha256(of file: PosixFile, range: Range<Int64>, buffer: UnsafeMutableRawBufferPointer) throws(ModelCacheError) -> BlobDigest {
        var hasher = SHA256()
        try forEachBlock(of: file, range: range, buffer: buffer) { hasher.update(bufferPointer: $0) }
        return BlobDigest(hasher.finalize())
    }

    /// Reads `range` of `file` block by block into `whole`'s buffers: each block is hashed into `hasher`, then queued
    /// on `whole` (the same bytes, in order, for the whole file's digest). Every slot taken goes back, on failure too.
    static func hash(_ file: PosixFile, range: Range<Int64>, into hasher: inout SHA256,
                     feeding whole: WholeFileHasher) throws(ModelCacheError) {
        var offset = range.lowerBound
        while offset < range.upperBound {
            let slot = whole.freeSlot()
            let want = Int(min(Int64(whole.buffer(slot).count), range.upperBound - offset))
            let block = UnsafeMutableRawBufferPointer(rebasing: whole.buffer(slot)[0..<want])
            let n: Int
            do throws(ModelCacheError) { n = try file.read(into: block, at: offset) } catch {
                whole.giveBack(slot)  // every slot back before the end: a semaphore freed below its start traps
                throw error
            }
            guard n == want else {
                whole.giveBack(slot)
                throw ModelCacheError.io(path: file.path, detail: "file ended at \(offset + Int64(n)), expected \(range.upperBound)")
            }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(block))
            whole.hash(slot, count: n)
            offset += Int64(n)
        }
    }

    /// One read of a whole file: the blob digest and every chunk digest (for `add`, `verify` and `hf import`). The two
    /// SHA-256 passes run on two threads: the caller's reads each block and hashes it into its chunk's digest, a
    /// thread of its own hashes the same block, in order, into the whole file's digest. Each byte is read once, so
    /// both digests describe the same bytes even if the file changes meanwhile. Measured (issue 12 §5,
    /// bench/big-node.sh): 20 GiB took 28.5 s with both passes on one thread, 14.8 s on two.
    public static func manifest(of path: String, chunkSize: Int64 = ChunkLayout.defaultChunkSize) throws(ModelCacheError) -> Manifest {
        let file = try PosixFile(path: path, flags: O_RDONLY)
        let layout = try ChunkLayout(size: try file.size(), chunkSize: chunkSize)
        let whole = WholeFileHasher()
        var chunks: [BlobDigest] = []
        chunks.reserveCapacity(layout.count)
        do throws(ModelCacheError) {
            for i in 0..<layout.count {
                var h = SHA256()
                try hash(file, range: layout.range(of: i), into: &h, feeding: whole)
                chunks.append(BlobDigest(h.finalize()))
            }
        } catch {
            _ = whole.finish()
            throw error
        }
        return try Manifest(sha256: whole.finish(), layout: layout, chunks: chunks)
    }

    static func forEachBlock(of file: PosixFile, range: Range<Int64>,
                             _ body: (UnsafeRawBufferPointer) -> Void) throws(ModelCacheError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 4096)
        defer { buffer.deallocate() }
        try forEachBlock(of: file, range: range, buffer: buffer, body)
    }

    static func forEachBlock(of file: PosixFile, range: Range<Int64>, buffer: UnsafeMutableRawBufferPointer,
                             _ body: (UnsafeRawBufferPointer) -> Void) throws(ModelCacheError) {
        let bufferSize = buffer.count
        var offset = range.lowerBound
        while offset < range.upperBound {
            let want = Int(min(Int64(bufferSize), range.upperBound - offset))
            let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: offset)
            guard n == want else { throw .io(path: file.path, detail: "file ended at \(offset + Int64(n)), expected \(range.upperBound)") }
            body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            offset += Int64(n)
        }
    }
}

/// The whole-file half of `FileHasher.manifest`: a thread that hashes, in order, the blocks the reader hands it, in a
/// ring of four 1 MiB buffers (a buffer goes back to the reader once hashed). Semaphores, not the cooperative pool:
/// both sides are plain threads blocked on each other for at most one block's hashing. Every slot taken must come
/// back (`hash` or `giveBack`) before the last reference goes: libdispatch traps when a semaphore is freed with a
/// value below the one it started with.
final class WholeFileHasher: @unchecked Sendable {
    // @unchecked: `buffers` are written only by the reader while their slot is free and read only by the hashing
    // thread while it is queued; the semaphores and the queue's mutex order every hand-over.
    private let buffers: [UnsafeMutableRawBufferPointer]
    private let free: DispatchSemaphore
    private let queued = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let queue = Mutex<[(slot: Int, count: Int)]>([])
    private let freeSlots: Mutex<[Int]>
    private let digest = Mutex<BlobDigest?>(nil)

    init(slots: Int = 4) {
        buffers = (0..<slots).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: FileHasher.bufferSize, alignment: 4096) }
        free = DispatchSemaphore(value: slots)
        freeSlots = Mutex(Array(0..<slots))
        Thread { [self] in run() }.start()
    }

    deinit { for b in buffers { b.deallocate() } }

    func buffer(_ slot: Int) -> UnsafeMutableRawBufferPointer { buffers[slot] }

    /// A buffer to read into (waits while all four are queued for hashing).
    func freeSlot() -> Int {
        free.wait()
        return freeSlots.withLock { $0.removeLast() }
    }

    /// Gives back a slot that will not be hashed.
    func giveBack(_ slot: Int) {
        freeSlots.withLock { $0.append(slot) }
        free.signal()
    }

    /// Queues the first `count` bytes of `slot` for the whole-file digest.
    func hash(_ slot: Int, count: Int) {
        queue.withLock { $0.append((slot, count)) }
        queued.signal()
    }

    /// Ends the thread after every queued block; returns the digest of everything queued. Call exactly once.
    func finish() -> BlobDigest {
        queue.withLock { $0.append((-1, 0)) }
        queued.signal()
        done.wait()
        return digest.withLock { $0 } ?? BlobDigest(SHA256().finalize())
    }

    private func run() {
        var hasher = SHA256()
        while true {
            queued.wait()
            let next = queue.withLock { $0.removeFirst() }
            if next.slot < 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffers[next.slot][0..<next.count]))
            giveBack(next.slot)
        }
        digest.withLock { $0 = BlobDigest(hasher.finalize()) }
        done.signal()
    }
}
