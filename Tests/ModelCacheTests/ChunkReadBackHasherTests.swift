import Foundation
import NIOCore
import Synchronization
import Testing
@testable import ModelCache
import ModelCacheCore

/// A one-stream download's chunks are hashed from the file on a thread of their own: the digests are the file's
/// bytes', every chunk is recorded, and a failure to record stops the stream with that failure.
@Suite struct ChunkReadBackHasherTests {
    /// Writes every chunk, in order, and queues each one once it is whole (as the one-stream download does).
    static func writeAll(_ bytes: [UInt8], to p: PartialDownload, queueingOn hasher: ChunkReadBackHasher) throws {
        for c in 0..<p.layout.count {
            let r = p.layout.range(of: c)
            try p.write(ByteBuffer(bytes: bytes[Int(r.lowerBound)..<Int(r.upperBound)]), at: r.lowerBound)
            hasher.hash(chunk: c)
        }
    }

    @Test func digestsAreTheFilesAndEveryChunkIsRecorded() async throws {
        let chunk = Int(TestEnvironment.chunk)
        let (env, bytes, p) = try HashFrontierTests.setUp(size: 9 * chunk + 123, seed: 41, capChunks: 1)
        let recorded = Mutex<[Int]>([])
        let hasher = ChunkReadBackHasher(partial: p) { c, d in
            try p.recordVerified(chunk: c, digest: d)
            recorded.withLock { $0.append(c) }
        }
        defer { hasher.stop() }
        try Self.writeAll(bytes, to: p, queueingOn: hasher)
        let digests = try await hasher.drain()
        #expect(digests.count == p.layout.count)
        for c in 0..<p.layout.count {
            let r = p.layout.range(of: c)
            #expect(digests[c] == BlobDigest.of(Array(bytes[Int(r.lowerBound)..<Int(r.upperBound)])), "chunk \(c)")
            #expect(p.isVerified(c), "chunk \(c)")
        }
        #expect(recorded.withLock { $0 } == Array(0..<p.layout.count), "recorded in the order queued")
        // The whole-blob hasher sees the same bytes.
        #expect(try await p.hashInOrder() == BlobDigest.of(bytes))
        await env.close()
    }

    @Test func aFailureToRecordIsThrownByDrainAndCheckAndNothingAfterItIsRecorded() async throws {
        let chunk = Int(TestEnvironment.chunk)
        let (env, bytes, p) = try HashFrontierTests.setUp(size: 6 * chunk, seed: 42, capChunks: 1)
        struct JournalFull: Error {}
        let recorded = Mutex<[Int]>([])
        let hasher = ChunkReadBackHasher(partial: p) { c, _ in
            if c == 2 { throw JournalFull() }
            recorded.withLock { $0.append(c) }
        }
        defer { hasher.stop() }
        try Self.writeAll(bytes, to: p, queueingOn: hasher)
        await #expect(throws: JournalFull.self) { try await hasher.drain() }
        #expect(throws: JournalFull.self) { try hasher.check() }
        #expect(recorded.withLock { $0 } == [0, 1])
        await env.close()
    }

    @Test func drainWithNothingQueuedReturnsAtOnceAndAStoppedHasherRecordsNothing() async throws {
        let (env, _, p) = try HashFrontierTests.setUp(size: 3 * Int(TestEnvironment.chunk), seed: 43, capChunks: 1)
        let recorded = Mutex<[Int]>([])
        let hasher = ChunkReadBackHasher(partial: p) { c, _ in recorded.withLock { $0.append(c) } }
        #expect(try await hasher.drain().isEmpty)
        hasher.stop()
        hasher.hash(chunk: 0)
        try await Task.sleep(for: .milliseconds(100))
        #expect(recorded.withLock { $0 }.isEmpty)
        try hasher.check()
        await env.close()
    }

    @Test func inOrderTheWholeFilesDigestComesFromTheSameReads() async throws {
        let chunk = Int(TestEnvironment.chunk)
        let (env, bytes, p) = try HashFrontierTests.setUp(size: 7 * chunk + 4321, seed: 44, capChunks: 1)
        let hasher = ChunkReadBackHasher(partial: p, wholeInOrder: true) { c, d in try p.recordVerified(chunk: c, digest: d) }
        defer { hasher.stop() }
        try Self.writeAll(bytes, to: p, queueingOn: hasher)
        let digests = try await hasher.drain()
        #expect(digests.count == p.layout.count)
        #expect(await hasher.wholeDigest() == BlobDigest.of(bytes))
        #expect(await hasher.wholeDigest() == nil, "given once")
        #expect(p.hashSources.memory == 0, "nothing held for the in-order hasher")
        await env.close()
    }

    @Test func outOfOrderOrIncompleteTheWholeDigestIsNotGiven() async throws {
        let chunk = Int(TestEnvironment.chunk)
        let (env, bytes, p) = try HashFrontierTests.setUp(size: 5 * chunk, seed: 45, capChunks: 1)
        let r = { (c: Int) in p.layout.range(of: c) }
        for c in 0..<p.layout.count {
            try p.write(ByteBuffer(bytes: bytes[Int(r(c).lowerBound)..<Int(r(c).upperBound)]), at: r(c).lowerBound)
        }
        // Chunk 1 before chunk 0: the chunk digests are right, the whole one is not given.
        let swapped = ChunkReadBackHasher(partial: p, wholeInOrder: true) { _, _ in }
        for c in [1, 0, 2, 3, 4] { swapped.hash(chunk: c) }
        let digests = try await swapped.drain()
        #expect(digests[1] == BlobDigest.of(Array(bytes[Int(r(1).lowerBound)..<Int(r(1).upperBound)])))
        #expect(await swapped.wholeDigest() == nil)
        swapped.stop()
        // The first four only: not the whole file.
        let short = ChunkReadBackHasher(partial: p, wholeInOrder: true) { _, _ in }
        for c in 0..<4 { short.hash(chunk: c) }
        _ = try await short.drain()
        #expect(await short.wholeDigest() == nil)
        short.stop()
        // Without `wholeInOrder`: none.
        let none = ChunkReadBackHasher(partial: p) { _, _ in }
        for c in 0..<5 { none.hash(chunk: c) }
        _ = try await none.drain()
        #expect(await none.wholeDigest() == nil)
        none.stop()
        await env.close()
    }
}
