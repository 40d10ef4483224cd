import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Nodes that download the same blob at the same time share verified chunks and split the origin's work.
@Suite(.serialized) struct SwarmTests {
    /// Starts `n` nodes that all know each other (static peers).
    func mesh(_ n: Int) async throws -> [TestNode] {
        var nodes: [TestNode] = []
        for _ in 0..<n { nodes.append(try await TestNode.start()) }
        for a in nodes { for b in nodes where a !== b { await a.node.directory.addStatic(b.address) } }
        for a in nodes { await a.node.directory.refreshAll() }
        return nodes
    }

    /// An origin serving `size` test bytes at `path` (their digest in `X-Linked-Etag` unless `linked` is false), at
    /// `rate` bytes per second shared by all its connections (nil: unlimited), and `n` nodes that know each other.
    struct Swarm {
        let origin: TestOrigin
        let bytes: [UInt8]
        let digest: BlobDigest
        let url: String
        let nodes: [TestNode]

        /// Each of `nodes` holds the whole blob.
        func expectHeld(by nodes: some Sequence<TestNode>, sourceLocation: SourceLocation = #_sourceLocation) throws {
            for n in nodes {
                let record = try #require(try n.env.store.lookup(digest: digest), sourceLocation: sourceLocation)
                #expect(PosixFile.readAll(record.path) == bytes, sourceLocation: sourceLocation)
            }
        }

        /// Stops `nodes` (all of them unless a test stopped some itself) and the origin.
        func stop(_ nodes: some Sequence<TestNode>) async {
            for n in nodes { await n.stop() }
            await origin.stop()
        }
    }

    func swarm(_ n: Int, size: Int, path: String, rate: Int?, linked: Bool = true) async throws -> Swarm {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(size)
        if linked { origin.serveLinked(path, bytes) } else { origin.serve(path, bytes) }
        if let rate { origin.inject(.sharedRate(bytesPerSecond: rate)) }
        return Swarm(origin: origin, bytes: bytes, digest: BlobDigest.of(bytes), url: origin.url(path), nodes: try await mesh(n))
    }

    @Test func fourNodesStartingTogetherTakeEachByteFromTheOriginAboutOnce() async throws {
        let s = try await swarm(4, size: 64 * 1024 * 1024, path: "/big.safetensors", rate: 48 * 1024 * 1024)
        let (origin, bytes, url, nodes) = (s.origin, s.bytes, s.url, s.nodes)
        let results = try await withThrowingTaskGroup(of: FetchResult.self) { group in
            for n in nodes { group.addTask { try await n.fetch(url, chunkSize: 256 * 1024) } }
            var out: [FetchResult] = []
            for try await r in group { out.append(r) }
            return out
        }
        #expect(results.count == 4)
        for r in results { #expect(r.sha256 == s.digest) }
        try s.expectHeld(by: nodes)
        let ratio = Double(origin.bytesServed) / Double(bytes.count)
        print("swarm: origin served \(ratio)x the size")
        #expect(ratio <= 1.25, "origin served \(ratio)× the size; sources: \(results.map(\.sources)); seconds \(results.map(\.seconds))")
        #expect(results.contains { r in r.sources.keys.contains { $0.hasPrefix("peer ") } })
        await s.stop(nodes)
    }

    /// Issue 12 §4: a node that joins a running download half a second late takes what the first node already
    /// verified from it and splits the rest of the origin's work; neither waits for the other.
    @Test func aNodeJoiningLateTakesTheFirstNodesChunksAndItsShare() async throws {
        let s = try await swarm(2, size: 16 * 1024 * 1024, path: "/late", rate: 8 * 1024 * 1024)
        let (origin, bytes, url, nodes) = (s.origin, s.bytes, s.url, s.nodes)
        let first = Task { try await nodes[0].fetch(url, chunkSize: 256 * 1024) }
        try await Task.sleep(for: .milliseconds(500))
        let late = try await nodes[1].fetch(url, chunkSize: 256 * 1024)
        let early = try await first.value
        #expect(early.sha256 == s.digest && late.sha256 == s.digest)
        try s.expectHeld(by: nodes)
        // The late node copied what the first one had (and took its share of the rest from the origin).
        #expect((late.sources["peer \(nodes[0].name)"] ?? 0) > 0, "late node's sources: \(late.sources)")
        let ratio = Double(origin.bytesServed) / Double(bytes.count)
        #expect(ratio <= 1.1, "origin served \(ratio)x the size; sources \(early.sources) / \(late.sources)")
        await s.stop(nodes)
    }

    @Test func aNodeKilledMidSwarmLeavesTheOthersToFinish() async throws {
        let s = try await swarm(3, size: 16 * 1024 * 1024, path: "/m", rate: 8 * 1024 * 1024)
        let (url, nodes) = (s.url, s.nodes)
        let victim = Task { try await nodes[0].fetch(url) }
        let survivors = Task {
            try await withThrowingTaskGroup(of: FetchResult.self) { group in
                for n in nodes.dropFirst() { group.addTask { try await n.fetch(url) } }
                var out: [FetchResult] = []
                for try await r in group { out.append(r) }
                return out
            }
        }
        try await Task.sleep(for: .milliseconds(700))
        victim.cancel()
        await nodes[0].stop()  // its server goes away too: its claims vanish with it
        let results = try await survivors.value
        #expect(results.count == 2 && results.allSatisfy { $0.sha256 == s.digest })
        try s.expectHeld(by: nodes.dropFirst())
        await s.stop(nodes.dropFirst())
    }

    /// A fake peer that says it is downloading the blob `digest` of `size` bytes (listed as partial for `url`), holds
    /// every chunk, serves other bytes, and answers its availability at once, never waiting for news.
    func swarmLiar(size: Int, digest: BlobDigest, url: String) async throws -> (TestOrigin, PeerAddress) {
        let liar = try await TestOrigin.start()
        let layout = try ChunkLayout(size: Int64(size), chunkSize: TestEnvironment.chunk)
        let enc = JSONEncoder()
        liar.serve("/v1/catalogue", Array(try enc.encode(Catalogue(node: "0123456789abcdef", blobs: [
            Catalogue.Entry(sha256: digest, size: Int64(size), chunkSize: TestEnvironment.chunk, urls: [url], partial: true)]))))
        liar.serve("/v1/blobs/\(digest.hex)/availability", Array(try enc.encode(ActiveDownloads.Availability(
            version: 1, size: Int64(size), chunkSize: TestEnvironment.chunk, have: ChunkSet.full(layout.count).hex,
            claims: ChunkSet(capacity: layout.count).hex, complete: false, node: "0123456789abcdef"))))
        liar.serve("/v1/blobs/\(digest.hex)", testBytes(size, seed: 99))
        return (liar, PeerAddress(host: "127.0.0.1", port: liar.port))
    }

    @Test func aPeerServingWrongBytesOfAnInProgressBlobIsCaughtAndQuarantined() async throws {
        let s = try await swarm(0, size: 2 * 1024 * 1024, path: "/m", rate: nil)
        let (origin, bytes, digest, url) = (s.origin, s.bytes, s.digest, s.url)
        let (liar, liarAddress) = try await swarmLiar(size: bytes.count, digest: digest, url: url)
        let n = try await TestNode.start(extraPeers: [liarAddress])
        let r = try await n.fetch(url)
        #expect(r.sha256 == digest)
        #expect(PosixFile.readAll(r.path) == bytes)
        #expect((r.sources["peer \(liarAddress.description)"] ?? 0) > 0)  // it did serve (wrong) bytes…
        let status = await n.node.directory.status()
        #expect(status.first { $0.name == liarAddress.description }?.quarantined == true)  // …and was caught
        await n.stop(); await liar.stop(); await origin.stop()
    }

    /// Offline (no origin to trace a bad chunk to its peer after the whole-blob check), beside a node that holds the
    /// blob: a swarm peer's chunks are checked against the holders' manifest as they come, so its wrong bytes are
    /// caught at its first chunk and the holder serves the rest. Before, they were checked only by the whole-blob
    /// digest at the end: the fetch failed with a digest mismatch and threw every verified chunk away.
    @Test func offlineASwarmPeersWrongBytesAreCaughtByTheHoldersManifest() async throws {
        let bytes = testBytes(2 * 1024 * 1024)
        let digest = BlobDigest.of(bytes)
        let url = "http://127.0.0.1:9/m.bin"  // never asked: --no-origin
        let holder = try await TestNode.start()
        try holder.holds(bytes, url: url)
        let (liar, liarAddress) = try await swarmLiar(size: bytes.count, digest: digest, url: url)
        let n = try await TestNode.start(peers: [holder], extraPeers: [liarAddress])
        let started = ContinuousClock.now
        let r = try await n.fetch(url, sha256: digest, useOrigin: false)
        let seconds = Double(started.duration(to: .now).components.seconds) + 1
        #expect(r.sha256 == digest && PosixFile.readAll(r.path) == bytes)
        // It answers its availability at once, never waiting for news as a long-poll does: asked about once a second
        // for the download's time (before, in a loop with no pause: 13 times in 0.3 s in one run).
        let asked = liar.getPaths.filter { $0 == "/v1/blobs/\(digest.hex)/availability" }.count
        #expect(Double(asked) <= 2 + 2 * seconds, "\(asked) availability requests in under \(seconds) s")
        #expect((r.sources["peer \(liarAddress.description)"] ?? 0) > 0, "sources: \(r.sources)")  // it was asked…
        let status = await n.node.directory.status()
        #expect(status.first { $0.name == liarAddress.description }?.quarantined == true)  // …and caught
        await n.stop(); await holder.stop(); await liar.stop()
    }

    @Test func withoutATrustedDigestNodesDoNotShareInProgressBytes() async throws {
        let s = try await swarm(2, size: 4 * 1024 * 1024, path: "/plain", rate: 16 * 1024 * 1024, linked: false)  // no --sha256
        let (origin, bytes, url, nodes) = (s.origin, s.bytes, s.url, s.nodes)
        async let a = nodes[0].fetch(url)
        async let b = nodes[1].fetch(url)
        let (ra, rb) = try await (a, b)
        #expect(ra.sha256 == BlobDigest.of(bytes) && rb.sha256 == ra.sha256)
        // Each took its bytes from the origin (or from the other's finished blob, never from a download in progress).
        #expect(ra.sources.keys.allSatisfy { $0 == "origin" } || rb.sources.keys.allSatisfy { $0 == "origin" })
        #expect(origin.bytesServed >= Int64(bytes.count))
        await s.stop(nodes)
    }
}

/// The limits a shared uplink needs. Only lower bounds on time are asserted: a limit can make a transfer slower,
/// never faster, so a slow machine cannot make these fail.
@Suite(.serialized) struct RateLimitTests {
    @Test func originRateIsCappedAcrossJobs() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/a", testBytes(1_000_000))
        origin.serve("/b", testBytes(1_000_000, seed: 2))
        let n = try await TestNode.start(maxOriginRate: 4_000_000)
        let clock = ContinuousClock.now
        async let a = n.fetch(origin.url("/a"))
        async let b = n.fetch(origin.url("/b"))
        _ = try await (a, b)
        // 2 MB at 4 MB/s with a 400 kB burst: at least 0.4 s, whatever the two fetches do.
        #expect(ContinuousClock.now - clock >= .milliseconds(390))
        await n.stop(); await origin.stop()
    }

    @Test func uploadRateIsCapped() async throws {
        let bytes = testBytes(1_500_000)
        let teacher = try await TestNode.start(maxUploadRate: 2_000_000)
        try teacher.holds(bytes, url: "http://127.0.0.1:1/m")
        let student = try await TestNode.start(peers: [teacher])
        let clock = ContinuousClock.now
        let r = try await student.fetch("http://127.0.0.1:1/m", useOrigin: false)
        #expect(r.sha256 == BlobDigest.of(bytes))
        // 1.5 MB at 2 MB/s with a 200 kB burst: at least 0.65 s.
        #expect(ContinuousClock.now - clock >= .milliseconds(640))
        await teacher.stop(); await student.stop()
    }
}
