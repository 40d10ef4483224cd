import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Testing
@testable import ModelCache
import ModelCacheCore

/// `/metrics` of in-process nodes on loopback: exact byte counts by source after a fetch from the origin and one from
/// a peer, bytes served, hits and misses, jobs by state and failure reason, evictions and the size gauges, peers and
/// quarantines; and a client on the LAN refused.
@Suite(.serialized) struct MetricsTests {
    let bytes = testBytes(2 * 1024 * 1024)
    var digest: BlobDigest { BlobDigest.of(bytes) }

    /// The node's `/metrics` over a real loopback connection, as `series → value` (`name{labels}` as exposed).
    func scrape(_ n: TestNode) async throws -> [String: Double] {
        let response = try await n.env.http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(n.port)/metrics"), timeout: .seconds(10))
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = String(buffer: try await response.body.collect(upTo: 1 << 22))
        var series: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("unparsable metrics line: \(line)")
                continue
            }
            series[String(line[..<space])] = value
        }
        return series
    }

    func received(_ kind: String, _ peer: String) -> String {
        "modelcache_received_bytes_total{source=\"\(kind)\",peer=\"\(peer)\"}"
    }

    @Test func bytesBySourceServedHitsAndMisses() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes, headers: [("X-Linked-Etag", "\"\(digest.hex)\"")])
        let a = try await TestNode.start()
        let fromOrigin = try await a.fetch(origin.url("/m.bin"))
        #expect(fromOrigin.sources == ["origin": Int64(bytes.count)])
        let b = try await TestNode.start(peers: [a])
        let fromPeer = try await b.fetch(origin.url("/m.bin"))
        #expect(fromPeer.sources == ["peer \(a.name)": Int64(bytes.count)])
        _ = try await b.fetch(origin.url("/m.bin"))  // a hit

        let ma = try await scrape(a)
        #expect(ma["modelcache_received_bytes_total{source=\"origin\"}"] == Double(bytes.count))
        #expect(ma["modelcache_served_bytes_total"] == Double(bytes.count))
        #expect(ma["modelcache_cache_misses_total"] == 1 && ma["modelcache_cache_hits_total"] == 0)
        #expect(ma["modelcache_fetch_duration_seconds_count"] == 1)
        #expect(ma["modelcache_cache_size_bytes"] == Double(bytes.count) && ma["modelcache_cache_blobs"] == 1)
        #expect(ma["modelcache_peers{found_by=\"static\"}"] == 0)

        let mb = try await scrape(b)
        #expect(mb["modelcache_received_bytes_total{source=\"origin\"}"] == 0)
        #expect(mb[received("peer", a.name)] == Double(bytes.count))
        #expect(mb.keys.filter { $0.hasPrefix("modelcache_received_bytes_total") }.count == 2)  // origin, and peer a
        #expect(mb["modelcache_served_bytes_total"] == 0)
        #expect(mb["modelcache_cache_misses_total"] == 1 && mb["modelcache_cache_hits_total"] == 1)
        #expect(mb["modelcache_fetch_duration_seconds_count"] == 1)
        #expect(mb["modelcache_fetch_duration_seconds_bucket{le=\"+Inf\"}"] == 1)
        #expect(mb["modelcache_peers{found_by=\"static\"}"] == 1 && mb["modelcache_peers{found_by=\"mdns\"}"] == 0)
        #expect(mb["modelcache_peers_quarantined"] == 0 && mb["modelcache_peer_quarantines_total"] == 0)
        #expect(mb["modelcache_cache_limit_bytes"] == nil)  // no --max-size
        await a.stop(); await b.stop(); await origin.stop()
    }

    @Test func jobsByStateAndFailureReason() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/ok.bin", testBytes(100_000, seed: 2))
        origin.serve("/slow.bin", testBytes(2_000_000, seed: 3))
        origin.inject(.trickle(bytesPerSecond: 100_000), path: "/slow.bin")
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "ok", title: "", requests: [Job.Request(url: origin.url("/ok.bin"))])
        _ = try await n.node.jobs.create(id: "gone", title: "", requests: [Job.Request(url: origin.url("/missing"))])
        #expect(try await n.waitForJob("ok").state == .success)
        #expect(try await n.waitForJob("gone").failureReason == .badStatus)
        _ = try await n.node.jobs.create(id: "slow", title: "", requests: [Job.Request(url: origin.url("/slow.bin"))])
        #expect(try await n.waitForJob("slow", until: { $0.state == .downloading && $0.downloaded > 0 }).state == .downloading)

        let running = try await scrape(n)
        let jobs = { (m: [String: Double], s: String) in m["modelcache_jobs{state=\"\(s)\"}"] }
        #expect(jobs(running, "success") == 1 && jobs(running, "failure") == 1 && jobs(running, "downloading") == 1)
        #expect(jobs(running, "pending") == 0 && jobs(running, "paused-offline") == 0)
        #expect(running["modelcache_jobs_failed{reason=\"bad-status\"}"] == 1)
        #expect(running["modelcache_jobs_failed{reason=\"aborted\"}"] == 0)

        _ = try await n.node.jobs.abort("slow")
        let after = try await scrape(n)
        #expect(jobs(after, "downloading") == 0 && jobs(after, "failure") == 2)
        #expect(after["modelcache_jobs_failed{reason=\"aborted\"}"] == 1 && after["modelcache_jobs_failed{reason=\"bad-status\"}"] == 1)
        await n.stop(); await origin.stop()
    }

    @Test func evictionsAndTheSizeGauges() async throws {
        let origin = try await TestOrigin.start()
        let first = testBytes(300_000, seed: 4), second = testBytes(250_000, seed: 5)
        origin.serve("/a.bin", first)
        origin.serve("/b.bin", second)
        let n = try await TestNode.start(maxCacheSize: 500_000)
        _ = try await n.fetch(origin.url("/a.bin"))
        _ = try await n.fetch(origin.url("/b.bin"))  // a is evicted to make room
        let m = try await scrape(n)
        #expect(m["modelcache_evictions_total"] == 1 && m["modelcache_evicted_bytes_total"] == 300_000)
        #expect(m["modelcache_cache_size_bytes"] == 250_000 && m["modelcache_cache_blobs"] == 1)
        #expect(m["modelcache_cache_limit_bytes"] == 500_000)
        #expect(m["modelcache_received_bytes_total{source=\"origin\"}"] == 550_000)
        await n.stop(); await origin.stop()
    }

    @Test func aCorruptPeerIsCountedAsQuarantined() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes, headers: [("X-Linked-Etag", "\"\(digest.hex)\"")])
        let bad = try await TestNode.start(), good = try await TestNode.start()
        try bad.holds(bytes, url: origin.url("/m.bin"))
        try good.holds(bytes, url: origin.url("/m.bin"))
        try bad.corrupt(digest)
        let c = try await TestNode.start(peers: [bad, good])
        let r = try await c.fetch(origin.url("/m.bin"))
        #expect(r.sha256 == digest)
        let m = try await scrape(c)
        #expect(m["modelcache_peer_quarantines_total"] == 1 && m["modelcache_peers_quarantined"] == 1)
        #expect(m["modelcache_peers{found_by=\"static\"}"] == 2)
        // Every byte received is counted, the corrupt chunks' too, under the peer that sent it.
        for (source, n) in r.sources {
            let name = String(source.dropFirst("peer ".count))
            #expect(m[source == "origin" ? "modelcache_received_bytes_total{source=\"origin\"}" : received("peer", name)] == Double(n), "\(source)")
        }
        #expect(m["modelcache_cache_misses_total"] == 1)
        await bad.stop(); await good.stop(); await c.stop(); await origin.stop()
    }

    @Test func swarmBytesAreCountedApart() async throws {
        // Two nodes that know each other start the same download together: what one takes from the other while
        // both download is counted as `source="swarm"`.
        let origin = try await TestOrigin.start()
        let big = testBytes(8 * 1024 * 1024, seed: 7)
        let d = BlobDigest.of(big)
        origin.serve("/big.bin", big, headers: [("X-Linked-Etag", "\"\(d.hex)\"")])
        origin.inject(.sharedRate(bytesPerSecond: 6 * 1024 * 1024))
        let a = try await TestNode.start(), b = try await TestNode.start()
        await a.node.directory.addStatic(b.address)
        await b.node.directory.addStatic(a.address)
        await a.node.directory.refreshAll(); await b.node.directory.refreshAll()
        let url = origin.url("/big.bin")
        async let ra = a.fetch(url, chunkSize: 256 * 1024)
        async let rb = b.fetch(url, chunkSize: 256 * 1024)
        let results = try await [(a, ra), (b, rb)]
        var swarmBytes = 0.0
        for (n, r) in results {
            #expect(r.sha256 == d)
            let m = try await scrape(n)
            #expect(m["modelcache_received_bytes_total{source=\"origin\"}"] == Double(r.sources["origin"] ?? 0))
            let other = n === a ? b.name : a.name
            let fromOther = (m[received("swarm", other)] ?? 0) + (m[received("peer", other)] ?? 0)
            #expect(fromOther == Double(r.sources["peer \(other)"] ?? 0))
            swarmBytes += m[received("swarm", other)] ?? 0
        }
        #expect(swarmBytes > 0, "no byte came from the swarm: \(results.map(\.1.sources))")
        await a.stop(); await b.stop(); await origin.stop()
    }

    @Test func hubDownloadsCountAsAMissThenAHit() async throws {
        let file = testBytes(300_000, seed: 8)
        let t = try await TestHubNode.start(serving: file)
        let (env, node, port) = (t.env, t.node, t.port)
        func get(_ path: String) async throws -> [UInt8] {
            let r = try await env.http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(30))
            #expect(r.status == .ok, "\(path)")
            return Array(buffer: try await r.body.collect(upTo: 1 << 22))
        }
        #expect(try await get("/org/m/resolve/main/w.bin") == file)  // downloaded by a job
        let job = try #require(await node.jobs.list().first)
        #expect(try await node.jobs.waitUntilFinal(job.id).state == .success)
        #expect(try await get("/org/m/resolve/main/w.bin") == file)  // from the store
        let lines = String(decoding: try await get("/metrics"), as: UTF8.self).split(separator: "\n")
        #expect(lines.contains("modelcache_cache_misses_total 1") && lines.contains("modelcache_cache_hits_total 1"))
        #expect(lines.contains("modelcache_received_bytes_total{source=\"origin\"} \(file.count)"))
        await t.stop()
    }

    @Test func peerNamesFromTheLANAreBoundedAndCleaned() throws {
        // mDNS names come from the LAN: labels stay printable, short, and at most `maxPeerLabels` distinct names.
        let m = CacheMetrics()
        m.received(10, from: .peer("evil\"}\nmodelcache_cache_hits_total 99\u{7}ü" + String(repeating: "x", count: 200)))
        for i in 0..<(CacheMetrics.maxPeerLabels + 6) { m.received(1, from: .swarm("p\(i)")) }
        let text = String(decoding: m.exposition(.init(cacheBytes: 0, cacheBlobs: 0, jobs: [], peers: [])), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.contains("modelcache_cache_hits_total 0") && !lines.contains { $0.hasPrefix("modelcache_cache_hits_total 99") })
        let received = lines.filter { $0.hasPrefix("modelcache_received_bytes_total{") }
        #expect(received.count == 1 + CacheMetrics.maxPeerLabels + 1)  // origin, the named peers, and "other"
        #expect(received.contains("modelcache_received_bytes_total{source=\"swarm\",peer=\"other\"} 7"))
        let evil = try #require(received.first { $0.contains("evil") })
        #expect(evil.hasSuffix(" 10") && evil.contains(#"evil\"}_modelcache"#) && !evil.contains("ü"))
        #expect(CacheMetrics.labelValue(String(repeating: "y", count: 300)).count == 64)
    }

    @Test func aClientOnTheLANIsRefused() async throws {
        // Loopback is all this test may use: the LAN client is a request context with a LAN address, fed to the
        // node's own route without a socket (as in WebAPITests).
        let n = try await TestNode.start()
        let router = Router(context: RemoteContext.self)
        n.node.metricsAPI.addRoutes(to: router)
        let responder = router.buildResponder()
        func send(from ip: String) async throws -> (status: HTTPResponse.Status, body: String) {
            let head = HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1:\(n.port)", path: "/metrics")
            var context = RemoteContext(source: .init(logger: Logger(label: "test")))
            context.remoteAddress = try SocketAddress(ipAddress: ip, port: 40_000)
            context.localAddress = try SocketAddress(ipAddress: "127.0.0.1", port: n.port)
            let response = try await responder.respond(to: Request(head: head, body: .init(buffer: ByteBuffer())), context: context)
            let sink = Sink()
            try await response.body.write(sink)
            return (response.status, sink.text)
        }
        for lan in ["10.1.2.3", "192.168.1.20", "::ffff:10.1.2.3", "fe80::1"] {
            let refused = try await send(from: lan)
            #expect(refused.status == .forbidden, "\(lan)")
            #expect(refused.body.contains("\"code\":\"not-local\"") && !refused.body.contains("modelcache_"), "\(lan): \(refused.body)")
        }
        for local in ["127.0.0.1", "::1"] {
            let allowed = try await send(from: local)
            #expect(allowed.status == .ok && allowed.body.contains("modelcache_cache_hits_total 0"), "\(local)")
        }
        await n.stop()
    }
}

/// A response body writer that keeps what it is given.
private final class Sink: ResponseBodyWriter, Sendable {
    private let box = Mutex<[UInt8]>([])
    var text: String { String(decoding: box.withLock { $0 }, as: UTF8.self) }
    func write(_ buffer: ByteBuffer) async throws { box.withLock { $0 += Array(buffer.readableBytesView) } }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
