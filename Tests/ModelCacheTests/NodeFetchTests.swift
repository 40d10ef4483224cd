import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Several nodes in one process on loopback ports with static peers.
@Suite(.serialized) struct NodeFetchTests {
    let bytes = testBytes(2 * 1024 * 1024)
    var digest: BlobDigest { BlobDigest.of(bytes) }

    func peerBytes(_ r: FetchResult) -> [String: Int64] { r.sources.filter { $0.key.hasPrefix("peer ") } }

    @Test func allChunksFromOnePeer() async throws {
        let origin = try await TestOrigin.start()
        // With the origin's digest, one peer is enough (without it, one peer's word is not: see TrustTests).
        origin.serveLinked("/m.bin", bytes)
        let a = try await TestNode.start()
        _ = try await a.fetch(origin.url("/m.bin"))
        let b = try await TestNode.start(peers: [a])
        origin.resetCounters()
        let r = try await b.fetch(origin.url("/m.bin"))
        #expect(r.sha256 == digest && b.env.contents(r.path) == bytes)
        #expect(r.sources == ["peer \(a.name)": Int64(bytes.count)])
        #expect(origin.bytesServed == 0)  // the origin answered a HEAD, and sent no body byte
        await a.stop(); await b.stop(); await origin.stop()
    }

    @Test func fromThreePeersAtOnce() async throws {
        let origin = try await TestOrigin.start()
        origin.serveLinked("/m.bin", bytes)
        let peers = try await [TestNode.start(), TestNode.start(), TestNode.start()]
        for p in peers { try p.holds(bytes, url: origin.url("/m.bin")) }
        let c = try await TestNode.start(peers: peers)
        origin.resetCounters()
        let r = try await c.fetch(origin.url("/m.bin"))
        #expect(c.env.contents(r.path) == bytes)
        #expect(peerBytes(r).count == 3)
        #expect(peerBytes(r).values.allSatisfy { $0 > 0 })
        #expect(peerBytes(r).values.reduce(0, +) == Int64(bytes.count))
        #expect(origin.bytesServed == 0)
        for p in peers { await p.stop() }
        await c.stop(); await origin.stop()
    }

    @Test func corruptPeerIsQuarantinedAndItsChunksComeFromElsewhere() async throws {
        let origin = try await TestOrigin.start()
        origin.serveLinked("/m.bin", bytes)
        let bad = try await TestNode.start()
        let good = try await TestNode.start()
        try bad.holds(bytes, url: origin.url("/m.bin"))
        try good.holds(bytes, url: origin.url("/m.bin"))
        try bad.corrupt(digest)
        let c = try await TestNode.start(peers: [bad, good])
        let r = try await c.fetch(origin.url("/m.bin"))
        #expect(c.env.contents(r.path) == bytes)
        #expect(r.sha256 == digest)
        let status = await c.node.directory.status()
        #expect(status.first { $0.name == bad.name }?.quarantined == true)
        #expect(status.first { $0.name == good.name }?.quarantined == false)
        await bad.stop(); await good.stop(); await c.stop(); await origin.stop()
    }

    @Test func peerDyingMidTransferHasItsChunksReassigned() async throws {
        // The peer's blob transfers are cut once it sent 10 KB, and it answers nothing useful after (a cut body that
        // could continue would be resumed from the same peer).
        let setup = try await OriginAndFaultyPeer.start(bytes, peerFault: .dieAfter(bytes: 10_000))
        let (url, dying) = (setup.url, setup.peer)
        let good = try await TestNode.start()
        try good.holds(bytes, url: url)
        let c = try await TestNode.start(peers: [good], extraPeers: [dying.address])
        let r = try await c.fetch(url, sha256: digest)
        #expect(c.env.contents(r.path) == bytes)
        #expect(r.sources["peer \(good.name)"] != nil)
        #expect((r.sources["peer \(dying.name)"] ?? 0) < 100_000)
        await good.stop(); await c.stop(); await setup.stop()
    }

    @Test func stalledPeerTimesOutAndIsReplaced() async throws {
        let setup = try await OriginAndFaultyPeer.start(bytes, peerFault: .stallAfter(bytes: 5_000))
        let stalled = setup.peer
        let c = try await TestNode.start(extraPeers: [stalled.address])
        let r = try await c.fetch(setup.url, sha256: digest)
        #expect(c.env.contents(r.path) == bytes)
        #expect(r.sources["origin"] == Int64(bytes.count))
        let status = await c.node.directory.status()
        #expect(status.first { $0.name == stalled.name }?.quarantined == false)  // slow is not malicious
        // One request per connection, each given back at its stall: none resumed from the peer, no new chunk after a
        // stall (the peer sends 5000 bytes per request: resuming it held each chunk until the 30 s chunk deadline).
        let chunkGets = stalled.server.getPaths.filter { $0 == "/v1/blobs/\(digest.hex)" }.count
        #expect(chunkGets >= 1 && chunkGets <= 4, "\(chunkGets) chunk requests to the stalled peer")
        await c.stop(); await setup.stop()
    }

    @Test func lyingCatalogueIsNotBelieved() async throws {
        let origin = try await TestOrigin.start()
        origin.serveLinked("/m.bin", bytes)
        let url = origin.url("/m.bin")
        // The liar says the URL is another blob of the same size, and serves that blob consistently.
        let other = testBytes(bytes.count, seed: 42)
        let otherDigest = BlobDigest.of(other)
        let liar = try await FakePeer.start(
            claims: [Catalogue.Entry(sha256: otherDigest, size: Int64(other.count), chunkSize: TestEnvironment.chunk, urls: [url])],
            serving: other, as: otherDigest)
        let good = try await TestNode.start()
        try good.holds(bytes, url: url)
        let c = try await TestNode.start(peers: [good], extraPeers: [liar.address])
        let r = try await c.fetch(url)
        #expect(r.sha256 == digest && c.env.contents(r.path) == bytes)
        #expect(r.sources["peer \(liar.name)"] == nil)
        // Nothing but its catalogue (and whether it downloads the blob too) was asked of it: no byte.
        #expect(liar.server.getPaths.filter { $0.hasPrefix("/v1/blobs/") && !$0.hasSuffix("/availability") }.isEmpty)
        await liar.server.stop(); await good.stop(); await c.stop(); await origin.stop()
    }

    @Test func forgedManifestAndBytesAreCaughtByTheWholeDigestAndBlamed() async throws {
        let origin = try await TestOrigin.start()
        origin.serveLinked("/m.bin", bytes)
        let url = origin.url("/m.bin")
        // The forger claims the right digest but serves other bytes with a manifest that matches those bytes.
        let forged = testBytes(bytes.count, seed: 7)
        let forger = try await FakePeer.start(
            claims: [Catalogue.Entry(sha256: digest, size: Int64(bytes.count), chunkSize: TestEnvironment.chunk, urls: [url])],
            serving: forged, as: digest, manifest: try FileHasherTestHelper.manifest(forged, digest: digest))
        let c = try await TestNode.start(extraPeers: [forger.address])
        let r = try await c.fetch(url)
        #expect(r.sha256 == digest && c.env.contents(r.path) == bytes)
        let status = await c.node.directory.status()
        #expect(status.first { $0.name == forger.name }?.quarantined == true)
        await forger.server.stop(); await c.stop(); await origin.stop()
    }

    @Test func originServesChunksNoPeerWillServe() async throws {
        // The peer lists the blob but answers 503 to every byte request: the origin must serve what it will not.
        let setup = try await OriginAndFaultyPeer.start(bytes, peerFault: .status(503))
        let busyPeer = setup.peer
        let c = try await TestNode.start(extraPeers: [busyPeer.address])
        let r = try await c.fetch(setup.url, sha256: digest)
        #expect(c.env.contents(r.path) == bytes)
        #expect(r.sources["origin"] == Int64(bytes.count))
        await c.stop(); await setup.stop()
    }

    @Test func noOriginOfflineClassroom() async throws {
        let url = "http://127.0.0.1:1/classroom/model.bin"  // nothing listens there
        let teacher = try await TestNode.start()
        try teacher.holds(bytes, url: url)
        let student = try await TestNode.start(peers: [teacher])
        let r = try await student.fetch(url, useOrigin: false)
        #expect(student.env.contents(r.path) == bytes)
        #expect(r.sources == ["peer \(teacher.name)": Int64(bytes.count)])
        // With the origin allowed but unreachable, the peers still serve it.
        let other = try await TestNode.start(peers: [teacher])
        let r2 = try await other.fetch(url)
        #expect(r2.sha256 == digest)
        // And a URL no peer holds fails with a clear error, nothing stored.
        await #expect(throws: ModelCacheError.self) { try await student.fetch("http://127.0.0.1:1/unknown.bin", useOrigin: false) }
        #expect(try student.env.store.list().count == 1)
        await teacher.stop(); await student.stop(); await other.stop()
    }
}
