import Crypto
import Foundation
import ModelCacheCore

/// Hashes a file (or a range of it) with SHA-256, reading 1 MiB at a time.
public enum FileHasher {
    static let bufferSize = 1 << 20

    public static func sha256(of file: PosixFile, range: Range<Int64>) throws(ModelCacheError) -> BlobDigest {
        var hasher = SHA256()
        try forEachBlock(of: file, range: range) { hasher.update(bufferPointer: $0) }
        return BlobDigest(hasher.finalize())
    }

    /// One pass over a whole file: the blob digest and every chunk digest (for `add` and `verify`).
    public static func manifest(of path: String, chunkSize: Int64 = ChunkLayout.defaultChunkSize) throws(ModelCacheError) -> Manifest {
        let file = try PosixFile(path: path, flags: O_RDONLY)
        let layout = try ChunkLayout(size: try file.size(), chunkSize: chunkSize)
        var whole = SHA256()
        var chunks: [BlobDigest] = []
        for i in 0..<layout.count {
            var h = SHA256()
            try forEachBlock(of: file, range: layout.range(of: i)) { block in
                h.update(bufferPointer: block)
                whole.update(bufferPointer: block)
            }
            chunks.append(BlobDigest(h.finalize()))
        }
        return try Manifest(sha256: BlobDigest(whole.finalize()), layout: layout, chunks: chunks)
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
