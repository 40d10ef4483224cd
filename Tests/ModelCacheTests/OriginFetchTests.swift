import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

@Suite(.serialized) struct OriginFetchTests {
    @Test func fetchesInParallelChunksAndCommitsVerifiedBlob() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(1_000_000)
        origin.serve("/model.bin", bytes)
        let r = try await env.engine.fetch(env.request(origin.url("/model.bin")))
        #expect(r.sha256 == BlobDigest.of(bytes))
        #expect(env.contents(r.path) == bytes)
        #expect(r.sources["origin"] == Int64(bytes.count))
        // 1,000,000 bytes in 16 chunks of 64 KiB, over 4 connections in spans of 4, 3, 3 and 2 chunks (each
        // connection's share of what was left), then 4 single chunks.
        #expect(origin.gets == 8)
        #expect(env.partials.isEmpty)
        let m = try #require(try env.store.manifest(of: r.sha256))
        #expect(m.chunks.count == 16 && m.chunks[0] == BlobDigest.of(Array(bytes[0..<65536])))
        await origin.stop(); await env.close()
    }

    /// One connection to the origin alone: one GET streams across every chunk end, each chunk still hashed into the
    /// manifest.
    @Test func oneConnectionStreamsTheBodyInOneGET() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(1_000_000, seed: 21)
        origin.serve("/one.bin", bytes)
        let r = try await env.engine.fetch(env.request(origin.url("/one.bin"), connections: 1))
        #expect(r.sha256 == BlobDigest.of(bytes) && env.contents(r.path) == bytes)
        #expect(origin.gets == 1 && origin.getStarts == [0])
        let m = try #require(try env.store.manifest(of: r.sha256))
        #expect(m.chunks.count == 16 && m.chunks[15] == BlobDigest.of(Array(bytes[15 * 65_536..<bytes.count])))
        #expect(env.partials.isEmpty)
        await origin.stop(); await env.close()
    }

    /// A one-connection download stopped after some chunks goes on with one GET from the first missing chunk.
    @Test func oneConnectionResumesAfterItsVerifiedChunksWithOneRangedGET() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(1_000_000, seed: 22)
        origin.serve("/two.bin", bytes)
        // 300,000 bytes, then silence on an open connection: chunks 0-3 arrive whole and are verified, chunk 4 not.
        origin.inject(.stallAfter(bytes: 300_000))
        let first = Task { try await env.engine.fetch(env.request(origin.url("/two.bin"), connections: 1)) }
        func verified() -> [Int] {
            let journal = env.partials.first.flatMap { PosixFile.readAll(env.store.partialDir + "/" + $0 + "/chunks.journal") } ?? []
            return ChunkJournal.parse(String(decoding: journal, as: UTF8.self), chunkCount: 16).keys.sorted()
        }
        for _ in 0..<1000 where verified().count < 4 { try await Task.sleep(for: .milliseconds(10)) }
        first.cancel()
        _ = await first.result
        // On a starved machine the 5 s read timeout may fire first: the GET resumed from byte 300,000 got 300,000
        // more, so more chunks are verified; always a prefix, since one stream goes in order.
        let kept = verified()
        #expect(kept.count >= 4 && kept == Array(0..<kept.count), "\(kept)")
        origin.clearFaults()
        let before = origin.getStarts.count
        let r = try await env.engine.fetch(env.request(origin.url("/two.bin"), connections: 1))
        #expect(r.sha256 == BlobDigest.of(bytes) && env.contents(r.path) == bytes)
        #expect(Array(origin.getStarts.dropFirst(before)) == [Int64(kept.count) * 65_536])
        await origin.stop(); await env.close()
    }

    @Test func secondFetchIsACacheHitWithoutNetwork() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        origin.serve("/a", testBytes(300_000))
        let first = try await env.engine.fetch(env.request(origin.url("/a")))
        origin.resetCounters()
        let second = try await env.engine.fetch(env.request(origin.url("/a")))
        #expect(second.cached && second.path == first.path)
        #expect(origin.requests == 0)
        // By digest too, under another URL: a hit with no request.
        let third = try await env.engine.fetch(env.request(origin.url("/other-name"), sha256: first.sha256))
        #expect(third.cached && origin.requests == 0)
        // ... that maps nothing: the user's digest is no evidence of what /other-name serves (protocol §8).
        #expect(third.digestSource == .user)
        #expect(try env.store.lookup(url: origin.url("/other-name")) == nil)
        await origin.stop(); await env.close()
    }

    @Test func twoURLsWithTheSameBytesAreStoredOnce() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(200_000)
        let digest = BlobDigest.of(bytes)
        origin.serve("/x", bytes, headers: [("X-Linked-Etag", "\"\(digest.hex)\"")])
        origin.serve("/y", bytes, headers: [("X-Linked-Etag", "\"\(digest.hex)\"")])
        _ = try await env.engine.fetch(env.request(origin.url("/x")))
        origin.resetCounters()
        let r = try await env.engine.fetch(env.request(origin.url("/y")))
        #expect(r.cached)
        #expect(origin.gets == 0)  // the HEAD's X-Linked-Etag named a stored blob
        #expect(env.blobFiles == [digest.hex])
        #expect(try env.store.list().first?.urls.count == 2)
        await origin.stop(); await env.close()
    }

    @Test func survivesDroppedConnections() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(500_000)
        origin.serve("/f", bytes)
        origin.inject(.dropAfter(bytes: 10_000, times: 3))
        let r = try await env.engine.fetch(env.request(origin.url("/f"), sha256: BlobDigest.of(bytes)))
        #expect(env.contents(r.path) == bytes)
        #expect(r.sources["origin"] == Int64(bytes.count))  // each cut body continued where it stopped
        await origin.stop(); await env.close()
    }

    @Test func retriesAfterServerErrors() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(200_000)
        origin.serve("/f", bytes)
        origin.inject(.failFirst(status: 500, times: 3))
        let r = try await env.engine.fetch(env.request(origin.url("/f")))
        #expect(env.contents(r.path) == bytes)
        await origin.stop(); await env.close()
    }

    /// With one connection the whole blob is hashed from the chunks' reads (`ChunkReadBackHasher`), with four by the
    /// in-order hasher: either way a flipped byte is caught before anything is stored.
    @Test(arguments: [1, 4])
    func flippedByteIsADigestMismatchAndNothingIsStored(connections: Int) async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(200_000)
        origin.serve("/f", bytes)
        origin.inject(.flipByte(at: 123_456))
        let expected = BlobDigest.of(bytes)
        var flipped = bytes
        flipped[123_456] ^= 0xff
        await #expect(throws: ModelCacheError.digestMismatch(expected: expected, got: BlobDigest.of(flipped))) {
            try await env.engine.fetch(env.request(origin.url("/f"), sha256: expected, connections: connections))
        }
        if connections == 1 { #expect(origin.gets == 1, "one stream") }
        #expect(env.blobFiles.isEmpty && env.partials.isEmpty)
        #expect(try env.store.list().isEmpty)
        await origin.stop(); await env.close()
    }

    @Test func originDigestHeaderIsChecked() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(100_000)
        let wrong = BlobDigest.of(Array("something else".utf8))
        origin.serve("/f", bytes, headers: [("X-Linked-Etag", "\"\(wrong.hex)\"")])
        await #expect(throws: ModelCacheError.digestMismatch(expected: wrong, got: BlobDigest.of(bytes))) {
            try await env.engine.fetch(env.request(origin.url("/f")))
        }
        #expect(env.blobFiles.isEmpty)
        await origin.stop(); await env.close()
    }

    @Test(arguments: [TestOrigin.Fault.ignoreRange, .ignoreRangeButAdvertise])
    func serverWithoutRangeGetsOneStream(_ fault: TestOrigin.Fault) async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(400_000)
        origin.serve("/f", bytes)
        origin.inject(fault)
        let r = try await env.engine.fetch(env.request(origin.url("/f")))
        #expect(env.contents(r.path) == bytes)
        #expect(try env.store.manifest(of: r.sha256)?.chunks.count == 7)
        await origin.stop(); await env.close()
    }

    @Test func followsRedirectsAndKeepsHopHeaders() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(150_000)
        let digest = BlobDigest.of(bytes)
        origin.serve("/cdn/blob", bytes)
        origin.redirect("/org/model/resolve/main/w.bin", to: "/cdn/blob")
        origin.serve("/org/model/resolve/main/w.bin", [], headers: [("X-Linked-Etag", "\"\(digest.hex)\""), ("X-Linked-Size", "150000")])
        let r = try await env.engine.fetch(env.request(origin.url("/org/model/resolve/main/w.bin")))
        #expect(r.sha256 == digest)
        #expect(try env.store.lookup(url: origin.url("/org/model/resolve/main/w.bin"))?.sha256 == digest)
        await origin.stop(); await env.close()
    }

    @Test func emptyFile() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        origin.serve("/empty", [])
        let r = try await env.engine.fetch(env.request(origin.url("/empty")))
        #expect(r.size == 0 && r.sha256 == BlobDigest.of([UInt8]()))
        #expect(PosixFile.fileSize(r.path) == 0)
        await origin.stop(); await env.close()
    }

    @Test func cancelledFetchResumesWithoutRefetchingVerifiedChunks() async throws {
        let origin = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(1_048_576)
        origin.serve("/slow", bytes)
        origin.inject(.trickle(bytesPerSecond: 2_000_000))
        let task = Task { try await env.engine.fetch(env.request(origin.url("/slow"), connections: 2)) }
        // Cancel once (bounded wait) some chunks are journalled as verified.
        for _ in 0..<400 {
            if journalledChunks(in: env.dir) >= 2 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        task.cancel()
        _ = await task.result
        try await origin.waitUntilQuiet()
        let firstRun = origin.bytesServed
        origin.clearFaults()
        origin.resetCounters()
        let r = try await env.engine.fetch(env.request(origin.url("/slow")))
        #expect(env.contents(r.path) == bytes)
        #expect(r.resumedBytes > 0)
        #expect(origin.bytesServed == Int64(bytes.count) - r.resumedBytes)
        #expect(firstRun > 0)
        await origin.stop(); await env.close()
    }
}
