import Crypto
import Foundation
import Synchronization
import Logging
import ModelCacheCore
import NIOCore

/// A download in progress under `partial/<sha256 of the URL>/`: `data` (preallocated to the blob's size, chunks
/// written at their offsets), `meta.json` (what the bytes are: URL, size, chunk size, validators), and
/// `chunks.journal` (verified chunks, see `ChunkJournal`). A new run on the same URL continues from the journal.
public final class PartialDownload: Sendable {
    public struct Meta: Codable, Sendable, Equatable {
        public var url: String
        public var size: Int64
        public var chunkSize: Int64
        public var etag: String?
        public var lastModified: String?
        public var expected: BlobDigest?
    }

    public let dir: String
    public let meta: Meta
    public let layout: ChunkLayout
    let data: PosixFile
    let journal: PosixFile
    /// Chunks whose bytes are on disk and verified (resumed ones included), and the pieces the whole-blob hasher
    /// holds in memory (`HashWindow`), under one lock: a piece is never held for a chunk already verified.
    private let state: Mutex<State>
    private struct State {
        var verified: ChunkSet
        /// Which bytes of which chunks are held (the pieces are their lengths: the bytes are in `copies`).
        var window: HashWindow<Int>
        /// The held bytes of each chunk, copied from the received pieces in order into one buffer per chunk (NIO's
        /// receive buffers go back to its pool at once); a buffer the hasher is done with is kept for reuse.
        var copies: [Int: ByteBuffer] = [:]
        var spare: [ByteBuffer] = []
        /// Chunk buffers allowed at once (the cap over the chunk size, plus one).
        let maxBuffers: Int
        var buffers = 0
        /// Bytes the whole-blob hasher took from memory, and read back from the file.
        var hashedFromMemory: Int64 = 0
        var hashedFromFile: Int64 = 0

        init(verified: ChunkSet, layout: ChunkLayout, cap: Int) {
            self.verified = verified
            self.window = HashWindow(layout: layout, cap: cap)
            // One more than the cap holds: the chunk being hashed keeps its buffer until it is hashed, and the
            // chunk that a connection starts meanwhile finds one.
            self.maxBuffers = cap > 0 ? 1 + max(1, cap / Int(max(1, min(layout.chunkSize, Int64(cap))))) : 0
        }

        /// Offers a piece just written for `chunk` to the window, and copies it when the window holds it.
        mutating func hold(_ piece: ByteBuffer, chunk: Int, startsChunk: Bool, at offset: Int64, reserve: Int) {
            if verified.contains(chunk) { window.abandon(chunk: chunk); release(chunk); return }
            if copies[chunk] == nil {
                // A chunk needs a buffer before its first piece is held; none free: this attempt is read back.
                guard startsChunk, buffers < maxBuffers || !spare.isEmpty else { window.abandon(chunk: chunk); return }
                if let b = spare.popLast() { copies[chunk] = b } else {
                    buffers += 1
                    copies[chunk] = ByteBufferAllocator().buffer(capacity: reserve)
                }
            }
            guard window.offer(piece.readableBytes, count: piece.readableBytes, at: offset) else { return }
            if startsChunk { copies[chunk]?.clear() }
            copies[chunk]?.writeImmutableBuffer(piece)
        }

        /// Gives a chunk's buffer back for reuse.
        mutating func release(_ chunk: Int) {
            guard var b = copies.removeValue(forKey: chunk) else { return }
            b.clear()
            spare.append(b)
        }
    }

    /// Most bytes of written pieces held for the whole-blob hasher (one chunk of the default size, in two buffers:
    /// one being hashed, one filling). Measured (issue 12 §1, 1 GiB, 2 busy cores): the hasher runs behind the
    /// connections by more than any window that keeps peak RSS under 64 MiB (6–10% of the bytes came from memory at
    /// 8–16 MiB, each 4 MiB more costing 4 MiB of RSS, and 8 connections at 8 MiB peaked at 65 MiB).
    public static let defaultWindowCap = 4 << 20

    public var dataPath: String { dir + "/data" }

    /// Opens (resuming when the origin's validators still match) or creates the partial download of `meta.url`.
    /// Returns the chunks verified by an earlier run; each one is re-hashed from disk before it is trusted.
    public static func open(in store: Store, meta: Meta, windowCap: Int = defaultWindowCap,
                            logger: Logger) throws -> (PartialDownload, [Int: BlobDigest]) {
        let key = BlobDigest.of(Array(meta.url.utf8)).hex
        let dir = store.partialDir + "/" + key
        let layout = try ChunkLayout(size: meta.size, chunkSize: meta.chunkSize)
        var resumed: [Int: BlobDigest] = [:]
        if let bytes = PosixFile.readAll(dir + "/meta.json"),
           let old = try? JSONDecoder().decode(Meta.self, from: Data(bytes)),
           old.url == meta.url, old.size == meta.size, old.chunkSize == meta.chunkSize,
           old.etag == meta.etag, old.lastModified == meta.lastModified,
           // A run that computes the digest (origin bytes only, protocol §8) never resumes one that took peers' chunks.
           old.expected == meta.expected || (meta.expected != nil && old.expected == nil),
           PosixFile.fileSize(dir + "/data") == meta.size {
            let text = String(decoding: PosixFile.readAll(dir + "/chunks.journal") ?? [], as: UTF8.self)
            resumed = ChunkJournal.parse(text, chunkCount: layout.count)
        } else if PosixFile.exists(dir) {
            logger.info("discarding stale partial download", metadata: ["url": "\(meta.url)"])
            PosixFile.removeTree(dir)
        }
        let data: PosixFile
        let journal: PosixFile
        do {
            try PosixFile.makeDirectories(dir)
            data = try PosixFile(path: dir + "/data", flags: O_RDWR | O_CREAT)
            if resumed.isEmpty {
                try data.preallocate(meta.size)
                if PosixFile.exists(dir + "/chunks.journal") { unlink(dir + "/chunks.journal") }
                try PosixFile.writeAtomically(dir + "/meta.json", Array(try JSONEncoder().encode(meta)))
            }
            journal = try PosixFile(path: dir + "/chunks.journal", flags: O_WRONLY | O_CREAT | O_APPEND)
        } catch {
            if resumed.isEmpty { PosixFile.removeTree(dir) }  // a full disk leaves nothing behind
            throw error
        }
        // Trust nothing from disk without re-hashing it: a power cut may have lost pages the journal mentions.
        var confirmed: [Int: BlobDigest] = [:]
        for (chunk, digest) in resumed.sorted(by: { $0.key < $1.key }) {
            if (try? FileHasher.sha256(of: data, range: layout.range(of: chunk))) == digest { confirmed[chunk] = digest }
        }
        let partial = PartialDownload(dir: dir, meta: meta, layout: layout, data: data, journal: journal, verified: confirmed.keys,
                                      windowCap: windowCap)
        if !resumed.isEmpty {
            logger.info("resuming partial download", metadata: [
                "url": "\(meta.url)", "chunks.verified": "\(confirmed.count)", "chunks.total": "\(layout.count)"])
        }
        return (partial, confirmed)
    }

    init(dir: String, meta: Meta, layout: ChunkLayout, data: PosixFile, journal: PosixFile, verified: some Sequence<Int>,
         windowCap: Int = defaultWindowCap) {
        self.dir = dir
        self.meta = meta
        self.layout = layout
        self.data = data
        self.journal = journal
        var set = ChunkSet(capacity: layout.count)
        for c in verified { set.insert(c) }
        self.state = Mutex(State(verified: set, layout: layout, cap: windowCap))
    }

    public func isVerified(_ chunk: Int) -> Bool { state.withLock { $0.verified.contains(chunk) } }
    public var verifiedSet: ChunkSet { state.withLock { $0.verified } }

    /// How the whole-blob hasher got its bytes so far: from pieces held in memory, and read back from the file;
    /// and the most bytes it held at once.
    public var hashSources: (memory: Int64, file: Int64, peakHeld: Int) {
        state.withLock { ($0.hashedFromMemory, $0.hashedFromFile, $0.window.peakHeldBytes) }
    }

    private let whole = Mutex(false)
    /// Set once the whole file matched its expected digest (before the fsync and commit): every byte may be served.
    public var isWholeVerified: Bool { whole.withLock { $0 } }
    func markWholeVerified() {
        whole.withLock { $0 = true }
        changes.notify()
    }

    /// Notified when a chunk is recorded verified, when the whole file is verified, when the download is discarded
    /// and when it stops being an active download: readers of a download in progress wait on it instead of polling.
    public let changes = ChangeSignal()

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(ModelCacheError) {
        try writeData(bytes, at: offset)
    }

    /// One writer at a time into the data file. The kernel lets one buffered write into a file run at a time anyway
    /// (the inode's lock), and its other writers spin on that lock while the owner copies: 0.85 CPU-s of one 1 GiB
    /// fetch at 4 connections (perf, a run where the page-cache copy itself was slow, 1.7 CPU-s). Waiting here parks
    /// the thread instead.
    private let writeGate = Mutex(())

    private func writeData(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(ModelCacheError) {
        try writeGate.withLock { (_: inout ()) throws(ModelCacheError) in try data.write(bytes, at: offset) }
    }

    /// Which fetch may write each chunk (end-game, issue 12 §4): two copies of a chunk may be on their way; the first
    /// streams into the file, a duplicate into memory. When the duplicate wins it takes the chunk over, and from then on
    /// every write of the first copy fails with `LostChunk` (the check and the write are one step under the chunk's
    /// lock, so no byte of the loser lands after the winner's). Striped locks: chunks far apart never wait on each
    /// other.
    private let writers = (0..<PartialDownload.writerStripes).map { _ in WriterStripe() }
    private let nextWriter = Atomic<UInt64>(0)
    static let writerStripes = 64

    /// One lock over the writer tokens of the chunks that share it.
    final class WriterStripe: Sendable {
        let owners = Mutex<[Int: UInt64]>([:])
    }

    /// The fetch that stops writing a chunk another copy of which won.
    struct LostChunk: Error, CustomStringConvertible {
        var chunk: Int
        var description: String { "another copy of chunk \(chunk) was verified first" }
    }

    /// Starts a fetch of `chunk` that writes into the file; returns its writer token for `write(_:at:chunk:writer:)`.
    func beginWriting(chunk: Int) -> UInt64 {
        let token = nextWriter.add(1, ordering: .relaxed).newValue
        writers[chunk % Self.writerStripes].owners.withLock { $0[chunk] = token }
        return token
    }

    /// Writes a piece of `chunk` for the fetch holding `writer` (and offers it to the whole-blob hasher's window, as
    /// `write(_:at:)`); throws `LostChunk` once another copy took the chunk.
    func write(_ piece: ByteBuffer, at offset: Int64, chunk: Int, writer: UInt64) throws {
        try writers[chunk % Self.writerStripes].owners.withLock { (owners: inout [Int: UInt64]) throws in
            guard owners[chunk] == writer else { throw LostChunk(chunk: chunk) }
            try write(piece, at: offset)
        }
    }

    /// A duplicate that won: its bytes (the whole chunk, from memory) replace whatever the first copy wrote, and the
    /// first copy may write no more.
    func takeOver(chunk: Int, bytes: UnsafeRawBufferPointer) throws {
        let token = nextWriter.add(1, ordering: .relaxed).newValue
        let range = layout.range(of: chunk)
        guard Int64(bytes.count) == range.count else {
            throw ModelCacheError.protocolViolation("a copy of chunk \(chunk) has \(bytes.count) bytes, not \(range.count)")
        }
        try writers[chunk % Self.writerStripes].owners.withLock { (owners: inout [Int: UInt64]) throws in
            owners[chunk] = token
            try writeData(bytes, at: range.lowerBound)
            // The window may hold the losing copy's first bytes: the hasher reads the winner's from the file.
            state.withLock {
                $0.window.abandon(chunk: chunk)
                $0.release(chunk)
            }
        }
    }

    /// Writes a piece received for one chunk (it must not cross the chunk's end) and offers it to the whole-blob
    /// hasher's window, which keeps a copy until the hasher's turn comes for that chunk.
    public func write(_ piece: ByteBuffer, at offset: Int64) throws(ModelCacheError) {
        try piece.withUnsafeReadableBytes { (p: UnsafeRawBufferPointer) throws(ModelCacheError) in try writeData(p, at: offset) }
        let chunk = offset >= 0 ? Int(offset / layout.chunkSize) : -1
        guard chunk >= 0 && chunk < layout.count, piece.readableBytes > 0 else { return }
        let range = layout.range(of: chunk)
        let reserve = Int(min(range.upperBound - range.lowerBound, Int64(Self.defaultWindowCap)))
        state.withLock { $0.hold(piece, chunk: chunk, startsChunk: offset == range.lowerBound, at: offset, reserve: reserve) }
    }

    /// Forgets the pieces held for a chunk whose attempt failed (its next attempt starts again from its first byte).
    public func abandon(chunk: Int) {
        state.withLock {
            $0.window.abandon(chunk: chunk)
            $0.release(chunk)
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(ModelCacheError) -> Int {
        try data.read(into: buffer, at: offset)
    }

    /// Records a verified chunk. Written with O_APPEND, one short line, so concurrent writers do not interleave.
    /// The chunk's pages start going to the disk now (the commit's fsync then has little left to write).
    public func recordVerified(chunk: Int, digest: BlobDigest) throws(ModelCacheError) {
        try journal.append(ChunkJournal.line(chunk: chunk, digest: digest))
        // Its writer token is dropped: a late copy of it still on its way now finds no token and writes nothing.
        writers[chunk % Self.writerStripes].owners.withLock { _ = $0.removeValue(forKey: chunk) }
        data.startWriteBack(layout.range(of: chunk))
        state.withLock { _ = $0.verified.insert(chunk) }
        changes.notify()
    }

    /// Hashes the whole blob in order while the download runs: each chunk is hashed as soon as it is verified and
    /// every chunk before it is hashed, from the pieces the window held in memory, the rest of it read back from the
    /// file (the page cache), so the final check costs no extra pass at the end. Runs until every chunk is hashed,
    /// or until cancelled (when the download fails).
    public func hashInOrder() async throws -> BlobDigest {
        var hasher = SHA256()
        var chunk = 0
        // At most this many bytes of chunks per batch: a cancelled download waits for one batch at most.
        let batchChunks = Int(max(1, Int64(64 << 20) / max(1, layout.chunkSize)))
        while chunk < layout.count {
            while true {
                let seen = changes.generation
                if isVerified(chunk) { break }
                try Task.checkCancellation()
                await changes.wait(since: seen)
            }
            var end = chunk + 1
            while end < layout.count, end - chunk < batchChunks, isVerified(end) { end += 1 }
            // The verified chunks from here on, in order, on a thread of their own: a burst of them (chunks verified
            // out of order, then all at once in turn) never holds one of the few threads the connections' readers
            // run on.
            let first = chunk
            hasher = try await OwnThread.run { [hasher, end] in
                var h = hasher
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
                defer { buffer.deallocate() }
                for c in first..<end { try self.hash(chunk: c, into: &h, buffer: buffer) }
                return h
            }
            chunk = end
        }
        return BlobDigest(hasher.finalize())
    }

    /// Hashes one verified chunk into `hasher`: what the window held of it, the rest read back from the file.
    private func hash(chunk: Int, into hasher: inout SHA256, buffer: UnsafeMutableRawBufferPointer) throws {
        // Moved out (no other reference stays), so that it is written into again without a copy once spare. Not
        // through a tuple kept in a constant: that held a second reference, `clear()` then allocated a fresh
        // chunk-sized buffer for every chunk, which malloc's arenas kept (peak RSS of a 1 GiB fetch 63 -> 48 MiB).
        var copy: ByteBuffer?
        let inMemory: Int64
        (copy, inMemory) = state.withLock { ($0.copies.removeValue(forKey: chunk), $0.window.take(chunk: chunk).bytes) }
        copy?.withUnsafeReadableBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0.prefix(Int(inMemory)))) }
        if var spare = copy {
            copy = nil  // the only reference left: the next chunk writes into it without a copy
            spare.clear()
            state.withLock { $0.spare.append(spare) }
        }
        let range = layout.range(of: chunk)
        let rest = range.lowerBound + inMemory..<range.upperBound
        if !rest.isEmpty {
            try FileHasher.forEachBlock(of: data, range: rest, buffer: buffer) { hasher.update(bufferPointer: $0) }
        }
        state.withLock {
            $0.hashedFromMemory += inMemory
            $0.hashedFromFile += Int64(rest.count)
        }
    }

    public func wholeDigest() throws(ModelCacheError) -> BlobDigest {
        try FileHasher.sha256(of: data, range: 0..<meta.size)
    }

    public func sha256(ofChunk chunk: Int) throws(ModelCacheError) -> BlobDigest {
        try FileHasher.sha256(of: data, range: layout.range(of: chunk))
    }

    /// The same, reading through `buffer`.
    func sha256(ofChunk chunk: Int, buffer: UnsafeMutableRawBufferPointer) throws(ModelCacheError) -> BlobDigest {
        try FileHasher.sha256(of: data, range: layout.range(of: chunk), buffer: buffer)
    }

    /// A chunk's digest, its bytes also queued, in order, on `whole` (`FileHasher.hash(_:range:into:feeding:)`).
    func sha256(ofChunk chunk: Int, feeding whole: WholeFileHasher) throws(ModelCacheError) -> BlobDigest {
        var hasher = SHA256()
        try FileHasher.hash(data, range: layout.range(of: chunk), into: &hasher, feeding: whole)
        return BlobDigest(hasher.finalize())
    }

    public func discard() {
        PosixFile.removeTree(dir)
        changes.notify()
    }
}
