import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// A peer that lies in the HTTP framing of its transfers, not in its bytes: its `Content-Range` gives another total
/// size than the agreed manifest, or it answers a Range GET with the whole body. Either is the peer's failure, never
/// the origin's: the peer is quarantined, the download goes on from the origin, and an error names the peer.
@Suite(.serialized) struct LyingPeerTransferTests {
    let bytes = testBytes(8 * Int(TestEnvironment.chunk))
    var digest: BlobDigest { BlobDigest.of(bytes) }

    /// A peer that lists the right blob with the right manifest but serves `extra` more bytes after it (so every
    /// `Content-Range` it sends gives a larger total), with `fault` on its transfers.
    func liar(_ url: String, extra: Int = 0, fault: TestOrigin.Fault? = nil) async throws -> FakePeer {
        let entry = Catalogue.Entry(sha256: digest, size: Int64(bytes.count), chunkSize: TestEnvironment.chunk, urls: [url])
        let peer = try await FakePeer.start(claims: [entry], serving: bytes + testBytes(extra, seed: 9), as: digest,
                                            manifest: try FileHasherTestHelper.manifest(bytes, digest: digest))
        if let fault { peer.server.inject(fault, path: "/v1/blobs/\(digest.hex)") }
        return peer
    }

    func quarantined(_ peer: FakePeer, on node: TestNode) async -> Bool? {
        await node.node.directory.status().first { $0.name == peer.name }?.quarantined
    }

    @Test func aPeersContentRangeWithAnotherTotalGetsItQuarantinedAndTheOriginServes() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        let url = origin.url("/m.bin")
        let peer = try await liar(url, extra: 1000)
        let c = try await TestNode.start(extraPeers: [peer.address])
        let r = try await c.fetch(url, sha256: digest)
        #expect(r.sha256 == digest && c.env.contents(r.path) == bytes)
        #expect(r.sources["origin"] == Int64(bytes.count), "sources: \(r.sources)")
        // Quarantined at its first lie, not after a run of failures: each of its connections asked it once at most.
        #expect(await quarantined(peer, on: c) == true)
        let blobGets = peer.server.getPaths.filter { $0 == "/v1/blobs/\(digest.hex)" }.count
        #expect(blobGets <= c.env.engine.settings.peerConnections, "\(blobGets) GETs of the blob from the peer")
        await c.stop(); await peer.server.stop(); await origin.stop()
    }

    @Test func aSolePeersContentRangeWithAnotherTotalFailsNamingThePeerAndStoresNothing() async throws {
        let origin = try await TestOrigin.start()
        let url = origin.url("/m.bin")  // not asked (--no-origin): the peer is the only source
        let peer = try await liar(url, extra: 1000)
        let c = try await TestNode.start(extraPeers: [peer.address])
        var message = ""
        do {
            _ = try await c.fetch(url, sha256: digest, useOrigin: false)
            Issue.record("a peer whose answers disagree with the manifest served the blob")
        } catch {
            message = "\(error)"
        }
        #expect(message.contains(peer.name) && message.contains("manifest"), "\(message)")
        #expect(!message.contains("origin"), "\(message)")
        #expect(try c.env.store.lookup(digest: digest) == nil)
        #expect(await quarantined(peer, on: c) == true)
        await c.stop(); await peer.server.stop(); await origin.stop()
    }

    /// Before: the peer's ignored Range ended its worker with an error meant for an origin that ignores Range, the
    /// other workers waited for chunks the scheduler still gave the (unblamed) peer, and the download hung.
    @Test(.timeLimit(.minutes(1)))
    func aPeerThatAnswersARangeWithTheWholeBodyIsQuarantinedAndTheOriginServesInRanges() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        let url = origin.url("/m.bin")
        let peer = try await liar(url, fault: .ignoreRangeButAdvertise)
        let c = try await TestNode.start(extraPeers: [peer.address])
        let r = try await c.fetch(url, sha256: digest)
        #expect(r.sha256 == digest && c.env.contents(r.path) == bytes)
        #expect(await quarantined(peer, on: c) == true)
        // The origin takes ranges: its chunks came in several Range GETs, not as the one stream of an origin that
        // ignores Range (which this peer's answer was once taken for).
        #expect(origin.getStarts.count > 1, "origin GETs at \(origin.getStarts)")
        #expect(r.sources["origin"].map { $0 >= Int64(bytes.count) } == true, "sources: \(r.sources)")
        await c.stop(); await peer.server.stop(); await origin.stop()
    }

    /// The first worker to throw ends the parallel run at once. Before, the run waited for every worker: with a peer
    /// that might share the download (a swarm peer: any peer that does not hold the blob), its worker idles waiting for
    /// chunks to appear, and an origin that turned out to ignore Range left the download hanging instead of falling
    /// back to one stream.
    @Test(.timeLimit(.minutes(1)))
    func anOriginThatIgnoresRangeBesideASwarmPeerFallsBackToOneStream() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        origin.inject(.ignoreRangeButAdvertise)
        let idle = try await TestNode.start()  // holds nothing: a possible swarm member
        let c = try await TestNode.start(peers: [idle])
        let r = try await c.fetch(origin.url("/m.bin"), sha256: digest)
        #expect(r.sha256 == digest && c.env.contents(r.path) == bytes)
        #expect(r.sources["origin"].map { $0 >= Int64(bytes.count) } == true, "sources: \(r.sources)")
        await c.stop(); await idle.stop(); await origin.stop()
    }
}

/// A peer's catalogue is its word, not the origin's: one that lists a URL with a giant size must not fail a job's
/// size check (quota, declared total) when the origin can say the real size.
@Suite(.serialized) struct LyingPeerSizeTests {
    @Test func aPeerClaimingAGiantSizeForAURLDoesNotFailAJobsQuotaCheck() async throws {
        let bytes = testBytes(300_000)
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        let url = origin.url("/m.bin")
        let giant = BlobDigest.of(testBytes(10, seed: 3))
        let liar = try await FakePeer.start(
            claims: [Catalogue.Entry(sha256: giant, size: 1 << 40, chunkSize: TestEnvironment.chunk, urls: [url])],
            serving: [], as: giant, manifest: try FileHasherTestHelper.manifest(testBytes(10, seed: 3), digest: giant))
        let n = try await TestNode.start(extraPeers: [liar.address], maxCacheSize: 1_000_000)
        _ = try await n.node.jobs.create(id: "q", title: "", requests: [Job.Request(url: url)])
        let j = try await n.waitForJob("q")
        #expect(j.state == .success, "\(j.state) \(String(describing: j.failureReason)) \(j.message ?? "")")
        await n.stop(); await liar.server.stop(); await origin.stop()
    }
}
