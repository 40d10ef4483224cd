import Crypto
import Foundation
import Synchronization
import Logging
import ModelCacheCore

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
    /// Chunks whose bytes are on disk and verified (resumed ones included).
    private let verified: Mutex<ChunkSet>

    public var dataPath: String { dir + "/data" }

    /// Opens (resuming when the origin's validators still match) or creates the partial download of `meta.url`.
    /// Returns the chunks verified by an earlier run; each one is re-hashed from disk before it is trusted.
    public static func open(in store: Store, meta: Meta, logger: Logger) throws -> (PartialDownload, [Int: BlobDigest]) {
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
        let partial = PartialDownload(dir: dir, meta: meta, layout: layout, data: data, journal: journal, verified: confirmed.keys)
        if !resumed.isEmpty {
            logger.info("resuming partial download", metadata: [
                "url": "\(meta.url)", "chunks.verified": "\(confirmed.count)", "chunks.total": "\(layout.count)"])
        }
        return (partial, confirmed)
    }

    init(dir: String, meta: Meta, layout: ChunkLayout, data: PosixFile, journal: PosixFile, verified: some Sequence<Int>) {
        self.dir = dir
        self.meta = meta
        self.layout = layout
        self.data = data
        self.journal = journal
        var set = ChunkSet(capacity: layout.count)
        for c in verified { set.insert(c) }
        self.verified = Mutex(set)
    }

    public func isVerified(_ chunk: Int) -> Bool { verified.withLock { $0.contains(chunk) } }
    public var verifiedSet: ChunkSet { verified.withLock { $0 } }

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
        try data.write(bytes, at: offset)
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

    /// Writes bytes of `chunk` for the fetch holding `writer`; throws `LostChunk` once another copy took the chunk.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64, chunk: Int, writer: UInt64) throws {
        try writers[chunk % Self.writerStripes].owners.withLock { (owners: inout [Int: UInt64]) throws in
            guard owners[chunk] == writer else { throw LostChunk(chunk: chunk) }
            try data.write(bytes, at: offset)
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
            try data.write(bytes, at: range.lowerBound)
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
        verified.withLock { _ = $0.insert(chunk) }
        changes.notify()
    }

    /// Hashes the whole blob in order while the download runs: each chunk is read back (from the page cache) as soon
    /// as it is verified, so the final check costs no extra pass at the end. Runs until every chunk is hashed, or
    /// until cancelled (when the download fails).
    public func hashInOrder() async throws -> BlobDigest {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        for chunk in 0..<layout.count {
            while true {
                let seen = changes.generation
                if isVerified(chunk) { break }
                try Task.checkCancellation()
                await changes.wait(since: seen)
            }
            try FileHasher.forEachBlock(of: data, range: layout.range(of: chunk), buffer: buffer) { hasher.update(bufferPointer: $0) }
            await Task.yield()
        }
        return BlobDigest(hasher.finalize())
    }

    public func wholeDigest() throws(ModelCacheError) -> BlobDigest {
        try FileHasher.sha256(of: data, range: 0..<meta.size)
    }

    public func sha256(ofChunk chunk: Int) throws(ModelCacheError) -> BlobDigest {
        try FileHasher.sha256(of: data, range: layout.range(of: chunk))
    }

    public func discard() {
        PosixFile.removeTree(dir)
        changes.notify()
    }
}
