import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Protocol §8 against fake and real peers on loopback: one liar never decides the bytes while the origin answers,
/// second-hand mappings never spread, a `--sha256` hit maps nothing, and an offline classroom is served by its
/// teacher without waiting for (or asking again) a dead origin.
@Suite(.serialized) struct TrustTests {
    let bytes = testBytes(2 * 1024 * 1024)
    var digest: BlobDigest { BlobDigest.of(bytes) }
    let other = testBytes(2 * 1024 * 1024, seed: 42)
    var otherDigest: BlobDigest { BlobDigest.of(other) }
    var size: Int64 { Int64(bytes.count) }

    func peerBytes(_ r: FetchResult) -> Int64 { r.sources.filter { $0.key.hasPrefix("peer ") }.values.reduce(0, +) }
    func advertised(_ n: TestNode, _ url: String) throws -> [BlobDigest] {
        try n.node.peerAPI.currentCatalogue().entries(forURL: url).map(\.sha256)
    }
    /// HEAD requests an origin answered (its probes).
    func heads(_ o: TestOrigin) -> Int { o.requests - o.gets }

    /// A fake peer that says `url` is `other` (same size as the real file, the origin's ETag copied) and serves
    /// `other` consistently (manifest and bytes agree).
    func liar(for url: String, node: String = "0badc0de0badc0de") async throws -> FakePeer {
        try await FakePeer.start(
            claims: [Catalogue.Entry(sha256: otherDigest, size: Int64(other.count), chunkSize: TestEnvironment.chunk,
                                     urls: [url], etag: "\"v1-\(bytes.count)\"")],
            serving: other, as: otherDigest, node: node)
    }
    func blobGets(_ p: FakePeer) -> [String] { p.server.getPaths.filter { $0.hasPrefix("/v1/blobs/") } }

    @Test func oneLiarWithTheOriginsSizeAndETagGetsNoByteInWhileTheOriginAnswersWithoutADigest() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)  // no digest header; ETag "v1-<size>"
        let url = origin.url("/m.bin")
        let liar = try await liar(for: url)
        let c = try await TestNode.start(extraPeers: [liar.address])
        let r = try await c.fetch(url)
        #expect(r.sha256 == digest && c.env.contents(r.path) == bytes)
        #expect(r.sources == ["origin": size])
        #expect(r.digestSource == .originBytes)
        #expect(blobGets(liar).isEmpty)  // not even its manifest was asked for
        #expect(try advertised(c, url) == [digest])  // the origin's bytes are first-hand
        await liar.server.stop(); await c.stop(); await origin.stop()
    }

    @Test func twoIndependentPeersWhoseClaimsMatchTheOriginServeWithoutADigest() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        let url = origin.url("/m.bin")
        let a = try await TestNode.start()
        #expect(try await a.fetch(url).digestSource == .originBytes)
        // One witness is not enough: b takes the origin's bytes (and becomes a second first-hand witness).
        let b = try await TestNode.start(peers: [a])
        let rb = try await b.fetch(url)
        #expect(rb.sources == ["origin": size] && rb.digestSource == .originBytes)
        let c = try await TestNode.start(peers: [a, b])
        origin.resetCounters()
        let r = try await c.fetch(url)
        #expect(r.sha256 == digest && c.env.contents(r.path) == bytes)
        #expect(peerBytes(r) == size && origin.bytesServed == 0)
        #expect(r.digestSource == .peersAgree)
        #expect(try advertised(c, url).isEmpty)  // second-hand: kept for c's own fetches, not spread
        #expect(try c.node.peerAPI.currentCatalogue().entry(digest) != nil)  // its bytes are still offered by digest
        #expect(try c.env.store.lookup(url: url)?.sha256 == digest)
        await a.stop(); await b.stop(); await c.stop(); await origin.stop()
    }

    @Test func twoAddressesOfOneLyingNodeAreOneWitness() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        let url = origin.url("/m.bin")
        let liar1 = try await liar(for: url)
        let liar2 = try await liar(for: url)  // same node id
        let c = try await TestNode.start(extraPeers: [liar1.address, liar2.address])
        let r = try await c.fetch(url)
        #expect(r.sha256 == digest && r.sources == ["origin": size])
        #expect(blobGets(liar1).isEmpty && blobGets(liar2).isEmpty)
        await liar1.server.stop(); await liar2.server.stop(); await c.stop(); await origin.stop()
    }

    @Test func noOriginFollowsTheOfflineRuleAndTheMappingDoesNotSpread() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        let url = origin.url("/m.bin")
        let liar = try await liar(for: url)
        let c = try await TestNode.start(extraPeers: [liar.address])
        // --no-origin: the user trusts the LAN; one peer's claim decides (protocol §8), the bytes match its digest.
        let r = try await c.fetch(url, useOrigin: false)
        #expect(r.sha256 == otherDigest && c.env.contents(r.path) == other)
        #expect(r.digestSource == .peers)
        #expect(origin.requests == 0)
        #expect(try advertised(c, url).isEmpty)
        // A neighbour with an empty cache does not take it from c: it asks the origin.
        let d = try await TestNode.start(peers: [c])
        let rd = try await d.fetch(url)
        #expect(rd.sha256 == digest && rd.sources == ["origin": size])
        await liar.server.stop(); await c.stop(); await d.stop(); await origin.stop()
    }

    @Test func aSha256HitMapsNothingAndALaterFetchAsksTheURLsOrigin() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/u1", bytes)
        origin.serve("/u2", other)
        let (u1, u2) = (origin.url("/u1"), origin.url("/u2"))
        let n = try await TestNode.start()
        _ = try await n.fetch(u1)
        origin.resetCounters()
        let hit = try await n.fetch(u2, sha256: digest)
        #expect(hit.cached && hit.sha256 == digest && hit.digestSource == .user)
        #expect(origin.requests == 0)
        #expect(try n.env.store.lookup(url: u2) == nil)
        #expect(try n.env.store.list().map(\.urls) == [[u1]])
        #expect(try advertised(n, u2).isEmpty)
        // A neighbour with an empty cache does not take the blob for u2 from n.
        let m = try await TestNode.start(peers: [n])
        let rm = try await m.fetch(u2)
        #expect(rm.sha256 == otherDigest && rm.sources == ["origin": size])
        // n's own digest-less fetch of u2 asks u2's origin and gets u2's bytes.
        let r = try await n.fetch(u2)
        #expect(!r.cached && r.sha256 == otherDigest && n.env.contents(r.path) == other)
        #expect(r.digestSource == .originBytes)
        #expect(try advertised(n, u2) == [otherDigest])
        await n.stop(); await m.stop(); await origin.stop()
    }

    @Test func aSha256DownloadFromPeersIsNotedButNeitherReusedNorAdvertised() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/u1", bytes)
        let down = try await TestOrigin.start()  // u2's host: answers 503 for now
        down.serve("/u2", other)
        down.inject(.status(503))
        let (u1, u2) = (origin.url("/u1"), down.url("/u2"))
        let t = try await TestNode.start()
        _ = try await t.fetch(u1)
        let n = try await TestNode.start(peers: [t])
        let r = try await n.fetch(u2, sha256: digest)
        #expect(r.sha256 == digest && peerBytes(r) == size)
        #expect(r.digestSource == .user)
        #expect(try n.env.store.list().first?.urlEvidence == [u2: .user])
        #expect(try n.env.store.lookup(url: u2) == nil)
        #expect(try advertised(n, u2).isEmpty)
        down.clearFaults()
        let again = try await n.fetch(u2)
        #expect(!again.cached && again.sha256 == otherDigest && again.sources == ["origin": size])
        #expect(try n.env.store.evidence(of: u2, digest: otherDigest) == .originBytes)
        await t.stop(); await n.stop(); await origin.stop(); await down.stop()
    }

    // MARK: Offline classroom

    /// A teacher holding two files of `origin`, imported from its USB stick.
    func teacher(_ origin: TestOrigin) async throws -> (TestNode, String, String) {
        let t = try await TestNode.start()
        let (u1, u2) = (origin.url("/a.bin"), origin.url("/b.bin"))
        try t.holds(bytes, url: u1)
        try t.holds(other, url: u2)
        return (t, u1, u2)
    }

    @Test func offlineOneTeacherDecidesAndTheDeadOriginIsAskedOnceWithoutRetries() async throws {
        let origin = try await TestOrigin.start()
        origin.inject(.status(503))  // the uplink's proxy says the origin is down
        let (t, u1, u2) = try await teacher(origin)
        let s = try await TestNode.start(peers: [t])
        let r1 = try await s.fetch(u1)
        #expect(r1.sha256 == digest && r1.sources == ["peer \(t.name)": size] && r1.digestSource == .peers)
        #expect(origin.requests == 1)  // one probe, no retry: the teacher was there
        let r2 = try await s.fetch(u2)
        #expect(r2.sha256 == otherDigest && r2.sources == ["peer \(t.name)": size])
        #expect(origin.requests == 1)  // remembered as down: not asked again
        #expect(try advertised(s, u1).isEmpty && advertised(t, u1) == [digest])
        await t.stop(); await s.stop(); await origin.stop()
    }

    @Test func aSilentOriginIsWaitedForOnlyTheGraceWhenATeacherHoldsTheFile() async throws {
        let origin = try await TestOrigin.start()
        origin.inject(.silentHead(.seconds(4)))  // connects, then says nothing (a link that went down mid-way)
        let (t, u1, u2) = try await teacher(origin)
        let s = try await TestNode.start(peers: [t])
        let r1 = try await s.fetch(u1)
        #expect(r1.sha256 == digest && r1.sources == ["peer \(t.name)": size] && r1.digestSource == .peers)
        let r2 = try await s.fetch(u2)
        #expect(r2.sha256 == otherDigest && r2.sources == ["peer \(t.name)": size])
        #expect(origin.requests == 1)  // the second fetch did not ask it again
        let host = try #require(OriginHealth.key(of: u1))
        #expect(s.node.engine.health.withLock { $0.isDown(host, now: .now) })
        await t.stop(); await s.stop(); await origin.stop()
    }

    @Test func anOriginThatAnswersAfterTheGraceStillOverrulesALoneLiar() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        origin.inject(.silentHead(.milliseconds(1200)))  // slower than the grace, faster than the liar's bytes
        let url = origin.url("/m.bin")
        let liar = try await liar(for: url)
        liar.server.inject(.trickle(bytesPerSecond: 150_000), path: "/v1/blobs/")  // 2 MiB over 4 connections: ~3.5 s
        let c = try await TestNode.start(extraPeers: [liar.address])
        let r = try await c.fetch(url)
        #expect(r.sha256 == digest && c.env.contents(r.path) == bytes)
        #expect(r.sources == ["origin": size] && r.digestSource == .originBytes)
        #expect(try c.env.store.lookup(digest: otherDigest) == nil)
        #expect(try advertised(c, url) == [digest])
        #expect(heads(origin) == 1)  // the late answer was used, not asked again
        await liar.server.stop(); await c.stop(); await origin.stop()
    }

    @Test func aStoppedOriginLeavesTheTeacherToServeAndIsRemembered() async throws {
        let origin = try await TestOrigin.start()
        let (t, u1, u2) = try await teacher(origin)
        await origin.stop()  // connections are refused from now on
        let s = try await TestNode.start(peers: [t])
        let r = try await s.fetch(u1)
        #expect(r.sha256 == digest && r.sources == ["peer \(t.name)": size] && r.digestSource == .peers)
        let host = try #require(OriginHealth.key(of: u1))
        #expect(s.node.engine.health.withLock { $0.isDown(host, now: .now) })
        // Back on the same port: within the remembered window the next fetch the teacher can serve does not ask it.
        let back = try await TestOrigin.start(port: origin.port)
        back.serve("/b.bin", other)
        let r2 = try await s.fetch(u2)
        #expect(r2.sha256 == otherDigest && r2.sources == ["peer \(t.name)": size])
        #expect(back.requests == 0)
        await t.stop(); await s.stop(); await back.stop()
    }

    @Test func aJobProbesTheOriginOnceForItsSizeCheckAndItsFetch() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes, headers: [("X-Linked-Etag", "\"\(digest.hex)\"")])
        let url = origin.url("/m.bin")
        let s = try await TestNode.start()
        let job = try await s.node.jobs.create(id: nil, title: "one", requests: [Job.Request(url: url)])
        let done = try await s.waitForJob(job.id)
        #expect(done.state == .success && done.downloadTotal == size)
        #expect(heads(origin) == 1)
        await s.stop(); await origin.stop()
    }

    @Test func anOfflineJobAsksTheDeadOriginOnceForAllItsFiles() async throws {
        let origin = try await TestOrigin.start()
        origin.inject(.status(503))
        let (t, u1, u2) = try await teacher(origin)
        let s = try await TestNode.start(peers: [t])
        await s.node.directory.refreshAll()
        let job = try await s.node.jobs.create(id: nil, title: "two", requests: [Job.Request(url: u1), Job.Request(url: u2)])
        let done = try await s.waitForJob(job.id)
        #expect(done.state == .success && done.downloadTotal == 2 * size)
        #expect(done.requests.map(\.result) == [digest, otherDigest])
        #expect(origin.requests == 1)
        await t.stop(); await s.stop(); await origin.stop()
    }
}
