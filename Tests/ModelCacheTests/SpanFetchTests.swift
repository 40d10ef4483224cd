import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Spans in a real fetch (issue 12 §1): consecutive chunks asked for in one Range GET, each still cut, hashed,
/// verified and journalled on its own. A cut resumes at the byte where it stopped; a stuck span loses its chunk to an
/// end-game duplicate and gives the rest back; a peer's corrupt chunk in a span quarantines the peer.
@Suite(.serialized) struct SpanFetchTests {
    let chunk = TestEnvironment.chunk
    let bytes = testBytes(8 * Int(TestEnvironment.chunk), seed: 41)
    var digest: BlobDigest { BlobDigest.of(bytes) }

    @Test func eightChunksOverTwoConnectionsTakeFourGETs() async throws {
        let env = try TestEnvironment()
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        let r = try await env.engine.fetch(env.request(origin.url("/m.bin"), connections: 2))
        #expect(r.sha256 == digest && env.contents(r.path) == bytes)
        // Spans of 4 and 2 chunks (each connection's share of what was left), then the last two one by one.
        let expected: [Int64] = [0, 4, 6, 7].map { $0 * chunk }
        #expect(origin.getStarts.sorted() == expected)
        #expect(origin.bytesServed == Int64(bytes.count))
        // Every chunk is in the manifest, hashed on its own.
        let m = try #require(try env.store.manifest(of: r.sha256))
        #expect(m.chunks == (0..<8).map { BlobDigest.of(Array(bytes[$0 * Int(chunk)..<($0 + 1) * Int(chunk)])) })
        await origin.stop(); await env.close()
    }

    @Test func aSpanCutInTheMiddleOfAChunkGoesOnFromThatByte() async throws {
        let env = try TestEnvironment()
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        origin.inject(.dropAfter(bytes: 100_000, times: 1))  // the first GET breaks off inside its second chunk
        let r = try await env.engine.fetch(env.request(origin.url("/m.bin"), connections: 2))
        #expect(r.sha256 == digest && env.contents(r.path) == bytes)
        // One more GET than without the cut: the cut span went on from the byte after the last one that arrived, past
        // its first byte. The server counts what it wrote: only what was on its way when the connection dropped was
        // sent again (in a run where chunk 0 alone had arrived, the span went on at chunk 1's first byte).
        var extra = origin.getStarts
        for start in [0, 4, 6, 7].map({ $0 * chunk }) {
            if let i = extra.firstIndex(of: start) { extra.remove(at: i) }
        }
        #expect(extra.count == 1, "GETs at \(origin.getStarts)")
        let resumedAt = extra.first ?? -1
        let cut: Int64 = resumedAt < 4 * chunk ? 100_000 : 4 * chunk + 100_000  // inside the span at 0, or at 4
        #expect(resumedAt > cut - 100_000 && resumedAt <= cut, "GETs at \(origin.getStarts)")
        #expect(origin.bytesServed == Int64(bytes.count) + cut - resumedAt, "origin sent \(origin.bytesServed)")
        await origin.stop(); await env.close()
    }

    /// Fetches the 8 chunks over 2 connections while the span of chunks 0-3 goes at full speed to 1,000 bytes into
    /// chunk `slowChunk`, then at `rate` bytes per second. Checks the bytes; returns where each GET started and the
    /// bytes the origin sent.
    func fetchWithASlowSpan(slowChunk: Int64, rate: Int, env: TestEnvironment) async throws -> (starts: [Int64], sent: Int64) {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        origin.inject(.slowFrom(offset: slowChunk * chunk + 1_000, bytesPerSecond: rate, times: 1))
        let r = try await env.engine.fetch(env.request(origin.url("/m.bin"), sha256: digest, connections: 2))
        #expect(r.sha256 == digest && env.contents(r.path) == bytes)
        let result = (origin.getStarts, origin.bytesServed)
        await origin.stop(); await env.close()
        return result
    }

    @Test func aSpanStuckInAChunkLosesItToADuplicateAndGivesTheRestBack() async throws {
        // Chunk 2 at 2 KB/s: stuck. The end-game's origin stall at 1 s, well before the client's 5 s read timeout
        // (which would cut the stuck body and resume it in place instead).
        let (starts, sent) = try await fetchWithASlowSpan(slowChunk: 2, rate: 2_048, env: TestEnvironment(originStall: .seconds(1)))
        // The spans at 0 and 4, chunks 6 and 7, chunk 3 taken from the stuck span, and the duplicate of chunk 2.
        let expected: [Int64] = [0, 2, 3, 4, 6, 7].map { $0 * chunk }
        #expect(starts.sorted() == expected, "GETs at \(starts)")
        // The stuck span was cut, not waited for: it sent only a few KB of chunk 2, and nothing of chunk 3.
        #expect(sent < Int64(bytes.count) + chunk / 2, "origin sent \(sent)")
    }

    @Test func aSlowSpansQueuedChunksGoToAnIdleConnection() async throws {
        // Chunk 1 at 32 KB/s (2 s a chunk): slow, not stuck (no end-game duplicate before 5 s).
        let (starts, sent) = try await fetchWithASlowSpan(slowChunk: 1, rate: 32_768, env: TestEnvironment())
        // The other connection's span at 4 and chunks 6 and 7, then chunks 3 and 2 taken from the slow span, which
        // ended after chunk 1.
        let expected: [Int64] = [0, 2, 3, 4, 6, 7].map { $0 * chunk }
        #expect(starts.sorted() == expected, "GETs at \(starts)")
        #expect(sent < Int64(bytes.count) + chunk / 2, "origin sent \(sent)")
    }

    @Test func aPeersSpanCutMidWayResumesFromThatPeer() async throws {
        let big = testBytes(32 * Int(chunk), seed: 42)
        // The fault counts the manifest's GET (under the same path) first, then cuts the first span's.
        let setup = try await OriginAndFaultyPeer.start(big, peerFault: .dropAfter(bytes: 300_000, times: 2))
        let c = try await TestNode.start(extraPeers: [setup.peer.address])
        setup.origin.resetCounters()
        let r = try await c.fetch(setup.url, sha256: BlobDigest.of(big))
        #expect(c.env.contents(r.path) == big)
        #expect(setup.origin.bytesServed == 0)
        // Fewer requests than chunks: the peer's chunks came in spans, one of them resumed where it broke off.
        let gets = setup.peer.server.getPaths.filter { $0.hasPrefix("/v1/blobs/") }.count
        #expect(gets < 32, "\(gets) requests for 32 chunks")
        #expect(setup.peer.server.getStarts.contains { $0 % chunk != 0 }, "GETs at \(setup.peer.server.getStarts)")
        // No span sent again from its start: beyond the blob, only the manifest (a few KB) and what each cut
        // connection had on its way when it dropped (the server counts what it wrote, not what arrived; 140 KB over
        // the two cuts in one run of 30). A span restarted at each cut would add about 300 KB a cut.
        #expect(setup.peer.server.bytesServed < Int64(big.count) + 6 * chunk, "peer sent \(setup.peer.server.bytesServed)")
        await c.stop(); await setup.stop()
    }

    @Test func aCorruptChunkInAPeersSpanQuarantinesThePeerAndTheRestComesFromTheOrigin() async throws {
        let setup = try await OriginAndFaultyPeer.start(bytes, peerFault: .flipByte(at: 2 * chunk + 10))
        let c = try await TestNode.start(extraPeers: [setup.peer.address])
        let r = try await c.fetch(setup.url, sha256: digest)
        #expect(c.env.contents(r.path) == bytes && r.sha256 == digest)
        let status = await c.node.directory.status()
        #expect(status.first { $0.name == setup.peer.name }?.quarantined == true)
        // Chunk 2 (corrupt) came from the origin, with what the peer's spans had not reached when it was quarantined
        // (nothing, when its other connections had taken every other chunk already); nothing was asked of the peer twice.
        #expect(r.sources["origin"].map { $0 >= chunk } == true, "sources: \(r.sources)")
        #expect(r.sources["peer \(setup.peer.name)"].map { $0 <= Int64(bytes.count) } == true, "sources: \(r.sources)")
        await c.stop(); await setup.stop()
    }
}
