import Foundation
import NIOCore
import Testing
@testable import ModelCache
import ModelCacheCore

/// The end-game in a real fetch (issue 12 §4): one chunk trickles from its source; an idle source fetches a second
/// copy, the first verified copy is kept, the trickle is cancelled (its bytes discarded, its source not blamed), and
/// the fetch ends with the right bytes without waiting for the trickle.
@Suite(.serialized) struct EndGameFetchTests {
    let bytes = testBytes(8 * Int(TestEnvironment.chunk))
    var digest: BlobDigest { BlobDigest.of(bytes) }
    /// 2 KB/s: the slow copy of a 64 KiB chunk would take about half a minute.
    let trickle = 2_048

    @Test func aChunkTricklingFromAPeerIsDuplicatedFromTheOrigin() async throws {
        let slowChunk = 2
        let setup = try await OriginAndFaultyPeer.start(bytes, peerFault: .trickleFrom(
            offset: Int64(slowChunk) * TestEnvironment.chunk, bytesPerSecond: trickle, times: 1))
        let (origin, slow) = (setup.origin, setup.peer)
        let c = try await TestNode.start(extraPeers: [slow.address])
        let r = try await c.fetch(setup.url, sha256: digest)
        #expect(c.env.contents(r.path) == bytes)
        // The peer served every other chunk; the origin sent exactly the one chunk it duplicated.
        #expect(r.sources["origin"] == TestEnvironment.chunk, "sources: \(r.sources)")
        #expect(origin.getStarts == [Int64(slowChunk) * TestEnvironment.chunk])
        // The trickle was cut, not waited for: the peer never sent the trickled chunk twice over. (On a loaded machine
        // the peer's own retry of that chunk, no longer trickled, may race the duplicate and send it whole once.)
        #expect(slow.server.bytesServed < Int64(bytes.count) + TestEnvironment.chunk, "peer sent \(slow.server.bytesServed)")
        // Slow is not malicious: the peer is not quarantined.
        let status = await c.node.directory.status()
        #expect(status.first { $0.name == slow.name }?.quarantined == false)
        await c.stop(); await setup.stop()
    }

    @Test func anOriginChunkStuckOnOneConnectionIsFetchedAgainOnAnother() async throws {
        let env = try TestEnvironment(maxSpanBytes: 0)  // a GET per chunk (spans: SpanFetchTests)
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        let stuck = Int64(5) * TestEnvironment.chunk
        origin.inject(.trickleFrom(offset: stuck, bytesPerSecond: trickle, times: 1))
        let r = try await env.engine.fetch(env.request(origin.url("/m.bin"), sha256: digest, connections: 2))
        #expect(r.sha256 == digest)
        #expect(env.contents(r.path) == bytes)
        // Chunk 5 was asked for twice (the trickle and its duplicate), every other chunk once (on a loaded machine one
        // other chunk may be asked for a second time).
        #expect(origin.getStarts.filter { $0 == stuck }.count == 2)
        #expect((9...10).contains(origin.getStarts.count), "GETs at \(origin.getStarts)")
        // The trickled copy was abandoned part-way: it did not cross the wire whole.
        let retried = Int64(origin.getStarts.count - 9) * TestEnvironment.chunk
        #expect(origin.bytesServed < Int64(bytes.count) + TestEnvironment.chunk + retried, "origin sent \(origin.bytesServed)")
        #expect(r.sources["origin"].map { $0 >= Int64(bytes.count) } == true)
        await origin.stop()
        await env.close()
    }

    @Test func aDuplicateThatWinsStopsTheFirstCopysWrites() async throws {
        let env = try TestEnvironment()
        let partial = try SignalWakeTests.openPartial(env, bytes)
        let range = partial.layout.range(of: 1)
        let good = Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)])
        let junk = [UInt8](repeating: 0xEE, count: 4096)
        let first = partial.beginWriting(chunk: 1)
        try partial.write(ByteBuffer(bytes: junk), at: range.lowerBound, chunk: 1, writer: first)
        // The duplicate wins: its bytes replace the first copy's, and the first copy may write no more.
        try good.withUnsafeBytes { try partial.takeOver(chunk: 1, bytes: $0) }
        #expect(throws: PartialDownload.LostChunk.self) {
            try partial.write(ByteBuffer(bytes: junk), at: range.lowerBound + 4096, chunk: 1, writer: first)
        }
        #expect(try partial.sha256(ofChunk: 1) == BlobDigest.of(good))
        // A copy of the wrong length is refused.
        #expect(throws: ModelCacheError.self) { try junk.withUnsafeBytes { try partial.takeOver(chunk: 1, bytes: $0) } }
        try partial.recordVerified(chunk: 1, digest: BlobDigest.of(good))
        // Once verified, no token writes the chunk any more.
        #expect(throws: PartialDownload.LostChunk.self) {
            try partial.write(ByteBuffer(bytes: junk), at: range.lowerBound, chunk: 1, writer: first)
        }
        #expect(try partial.sha256(ofChunk: 1) == BlobDigest.of(good))
        await env.close()
    }

    /// The first copy's bytes were offered to the whole-blob hasher's window before the duplicate won: the hasher
    /// must hash the winner's bytes (from the file), not the loser's held prefix.
    @Test func theWholeBlobHashUsesTheWinnersBytesAfterATakeOver() async throws {
        let env = try TestEnvironment()
        let partial = try SignalWakeTests.openPartial(env, bytes)
        let hashing = Task { try await partial.hashInOrder() }
        for chunk in 0..<partial.layout.count where chunk != 1 {
            let r = partial.layout.range(of: chunk)
            try partial.write(ByteBuffer(bytes: bytes[Int(r.lowerBound)..<Int(r.upperBound)]), at: r.lowerBound)
            try partial.recordVerified(chunk: chunk, digest: BlobDigest.of(Array(bytes[Int(r.lowerBound)..<Int(r.upperBound)])))
        }
        let range = partial.layout.range(of: 1)
        let good = Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)])
        let first = partial.beginWriting(chunk: 1)
        try partial.write(ByteBuffer(bytes: [UInt8](repeating: 0xEE, count: 4096)), at: range.lowerBound, chunk: 1, writer: first)
        try good.withUnsafeBytes { try partial.takeOver(chunk: 1, bytes: $0) }
        try partial.recordVerified(chunk: 1, digest: BlobDigest.of(good))
        #expect(try await hashing.value == digest)
        await env.close()
    }
}
