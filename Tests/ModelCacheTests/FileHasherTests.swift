import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// `FileHasher.manifest`: one read of the file, the chunk digests on the caller's thread and the whole digest on a
/// thread of its own, the same as hashing each in one go.
@Suite struct FileHasherTests {
    func check(size: Int, chunkSize: Int64) throws {
        let path = NSTemporaryDirectory() + "modelcache-hasher-" + UUID().uuidString
        defer { unlink(path) }
        let bytes = testBytes(size, seed: UInt64(size % 251))
        let f = try PosixFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try bytes.withUnsafeBytes { try f.write($0, at: 0) }
        let m = try FileHasher.manifest(of: path, chunkSize: chunkSize)
        #expect(m.sha256 == BlobDigest.of(bytes), "size \(size), chunk \(chunkSize)")
        let step = Int(chunkSize)
        let want = stride(from: 0, to: size, by: step).map { BlobDigest.of(Array(bytes[$0..<min($0 + step, size)])) }
        #expect(m.chunks == want, "size \(size), chunk \(chunkSize)")
    }

    @Test func digestsMatchHashingEachInOneGo() throws {
        try check(size: 0, chunkSize: 16_384)  // no chunk: the empty file's digest
        try check(size: 1, chunkSize: 16_384)
        try check(size: 5 * 16_384 + 7, chunkSize: 16_384)  // chunks smaller than a read
        try check(size: (1 << 20) * 9 + 12_345, chunkSize: 4 << 20)  // reads smaller than a chunk, more than the ring holds
        try check(size: 8 << 20, chunkSize: 1 << 20)  // chunk = read
    }

    /// A file that cannot be opened fails with a clear error before any thread starts; one whose read fails (a
    /// folder opens, has a size, and cannot be read) fails with the read's error, its buffer given back and its
    /// hashing thread ended (a slot kept would trap when the hasher is freed). The next manifest works.
    @Test func aFileThatCannotBeOpenedOrReadFailsWithAnIOError() throws {
        #expect(throws: ModelCacheError.self) { try FileHasher.manifest(of: "/nonexistent/modelcache-hasher") }
        let dir = NSTemporaryDirectory() + "modelcache-hasher-dir-" + UUID().uuidString
        try PosixFile.makeDirectories(dir)
        defer { PosixFile.removeTree(dir) }
        #expect(throws: ModelCacheError.self) { try FileHasher.manifest(of: dir) }
        try check(size: 100_000, chunkSize: 16_384)
    }
}
