import Foundation
import Logging
import NIOCore
import Testing
@testable import ModelCache
import ModelCacheCore

/// The whole-blob hasher of a download in progress takes each chunk's bytes from the pieces the download wrote
/// (held in memory up to a cap), reading back from the file only what it did not hold: the digest is the file's,
/// whatever the order the chunks arrive in.
@Suite struct HashFrontierTests {
    static func open(_ env: TestEnvironment, _ bytes: [UInt8], cap: Int, url: String = "http://127.0.0.1:1/frontier") throws -> PartialDownload {
        let meta = PartialDownload.Meta(url: url, size: Int64(bytes.count), chunkSize: TestEnvironment.chunk,
                                        etag: nil, lastModified: nil, expected: BlobDigest.of(bytes))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try PartialDownload.open(in: env.store, meta: meta, windowCap: cap, logger: logger).0
    }

    /// A fresh store and a partial download of `size` random bytes whose window holds `capChunks` chunks.
    static func setUp(size: Int, seed: UInt64, capChunks: Int) throws -> (TestEnvironment, [UInt8], PartialDownload) {
        let env = try TestEnvironment()
        let bytes = testBytes(size, seed: seed)
        return (env, bytes, try open(env, bytes, cap: capChunks * Int(TestEnvironment.chunk)))
    }

    /// Writes chunks in `order`, each in pieces of 5000 bytes (as socket reads arrive), `inFlight` chunks interleaved,
    /// recording each verified when its last piece is written.
    static func deliver(_ p: PartialDownload, _ bytes: [UInt8], order: [Int], inFlight: Int) throws {
        var queue = order
        var active: [(chunk: Int, at: Int64)] = []
        var turn = 0
        while !queue.isEmpty || !active.isEmpty {
            while active.count < inFlight, !queue.isEmpty {
                let c = queue.removeFirst()
                active.append((c, p.layout.range(of: c).lowerBound))
            }
            turn += 1
            let i = turn % active.count
            let (chunk, at) = active[i]
            let end = p.layout.range(of: chunk).upperBound
            let n = Int(min(5000, end - at))
            try p.write(ByteBuffer(bytes: bytes[Int(at)..<Int(at) + n]), at: at)
            if at + Int64(n) == end {
                let r = p.layout.range(of: chunk)
                try p.recordVerified(chunk: chunk, digest: BlobDigest.of(Array(bytes[Int(r.lowerBound)..<Int(r.upperBound)])))
                active.remove(at: i)
            } else {
                active[i].at = at + Int64(n)
            }
        }
    }

    @Test(arguments: [false, true])
    func digestIsTheFilesForChunksInAnyOrderWithTheCapHit(reversed: Bool) async throws {
        let env = try TestEnvironment()
        let chunk = Int(TestEnvironment.chunk)
        let bytes = testBytes(12 * chunk + 777, seed: reversed ? 3 : 4)
        let cap = 2 * chunk
        let p = try Self.open(env, bytes, cap: cap)
        let hasher = Task { try await p.hashInOrder() }
        var order = Array(0..<p.layout.count).shuffled()
        if reversed { order.reverse() }
        try Self.deliver(p, bytes, order: order, inFlight: 3)
        #expect(try await hasher.value == BlobDigest.of(bytes))
        #expect(try p.wholeDigest() == BlobDigest.of(bytes))
        let s = p.hashSources
        #expect(s.memory + s.file == Int64(bytes.count))
        #expect(s.file > 0)  // the cap was hit: some bytes were read back
        #expect(s.peakHeld <= cap)
        await env.close()
    }

    @Test func underTheCapEveryByteIsHashedFromMemory() async throws {
        let (env, bytes, p) = try Self.setUp(size: 6 * Int(TestEnvironment.chunk) + 5, seed: 9, capChunks: 7)
        let hasher = Task { try await p.hashInOrder() }
        try Self.deliver(p, bytes, order: Array(0..<p.layout.count), inFlight: 2)
        #expect(try await hasher.value == BlobDigest.of(bytes))
        #expect(p.hashSources.memory == Int64(bytes.count))
        #expect(p.hashSources.file == 0)
        await env.close()
    }

    /// A chunk whose first attempt wrote wrong bytes (a corrupt peer) and was written again: the hasher uses the
    /// second attempt's bytes, which are the file's.
    @Test func aRetriedChunkIsHashedFromItsLastAttempt() async throws {
        let chunk = Int(TestEnvironment.chunk)
        let (env, bytes, p) = try Self.setUp(size: 3 * chunk, seed: 11, capChunks: 8)
        let hasher = Task { try await p.hashInOrder() }
        let garbage = [UInt8](repeating: 0xAB, count: chunk / 2)
        try p.write(ByteBuffer(bytes: garbage), at: 0)  // the corrupt attempt, cut half-way
        p.abandon(chunk: 0)
        try p.write(ByteBuffer(bytes: garbage), at: Int64(chunk))  // chunk 1: a second attempt starts over without abandon
        try Self.deliver(p, bytes, order: [0, 1, 2], inFlight: 1)
        #expect(try await hasher.value == BlobDigest.of(bytes))
        #expect(p.hashSources.memory == Int64(bytes.count))
        await env.close()
    }

    /// A piece written into a chunk already verified (a stale writer) is not held: the hasher reads that chunk from
    /// the file, so what it hashes is what the commit would keep.
    @Test func aWriteAfterVerificationIsNotHeld() async throws {
        let chunk = Int(TestEnvironment.chunk)
        let (env, bytes, p) = try Self.setUp(size: 2 * chunk, seed: 12, capChunks: 8)
        try Self.deliver(p, bytes, order: [1], inFlight: 1)
        try p.write(ByteBuffer(bytes: bytes[chunk..<chunk + 100]), at: Int64(chunk))  // same bytes, written again
        let hasher = Task { try await p.hashInOrder() }
        try Self.deliver(p, bytes, order: [0], inFlight: 1)
        #expect(try await hasher.value == BlobDigest.of(bytes))
        #expect(p.hashSources.file == Int64(chunk))  // chunk 1 was read back
        await env.close()
    }
}
