import AsyncHTTPClient
import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Protocol §14 on loopback: a keyed node serves its members only (401 `cluster-key-required`, with no catalogue and
/// no byte, to everyone else), refuses replayed and stale requests, checks its members' catalogue signatures, trusts a
/// member's URL claim (§8); a keyless node behaves as before.
@Suite(.serialized) struct ClusterAuthTests {
    let bytes = testBytes(2 * 1024 * 1024)
    var digest: BlobDigest { BlobDigest.of(bytes) }
    let key = ClusterKey(bytes: Array("classroom-a-shared-secret-0123456789".utf8))!
    let otherKey = ClusterKey(bytes: Array("classroom-b-shared-secret-9876543210".utf8))!

    func peerBytes(_ r: FetchResult) -> Int64 { r.sources.filter { $0.key.hasPrefix("peer ") }.values.reduce(0, +) }

    /// A GET to `path` on `node`, signed with `key` (nil: unsigned) at `time` with `nonce`; the status and the body.
    func get(_ node: TestNode, _ path: String, key: ClusterKey?, time: Int64 = Int64(Date().timeIntervalSince1970),
             nonce: String = ClusterKey.randomNonce(), extra: [(String, String)] = []) async throws -> (Int, [UInt8]) {
        var req = HTTPClientRequest(url: node.address.baseURL + path)
        for (n, v) in key?.signRequest(method: "GET", target: path, time: time, nonce: nonce) ?? [] { req.headers.add(name: n, value: v) }
        for (n, v) in extra { req.headers.add(name: n, value: v) }
        let res = try await node.env.http.execute(req, timeout: .seconds(10))
        return (Int(res.status.code), Array(buffer: try await res.body.collect(upTo: 16 << 20)))
    }

    func errorCode(_ body: [UInt8]) -> String? {
        struct E: Decodable { struct Inner: Decodable { var code: String }; var error: Inner }
        return try? JSONDecoder().decode(E.self, from: Data(body)).error.code
    }

    @Test func aKeyedNodeServesAMemberWhoseClaimIsTrustedWithoutAnOriginDigest() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)  // no digest header: one stranger's claim would not decide (§8)
        let url = origin.url("/m.bin")
        let a = try await TestNode.start(clusterKey: key)
        _ = try await a.fetch(url)  // first-hand: the origin's bytes
        let b = try await TestNode.start(peers: [a], clusterKey: key)
        origin.resetCounters()
        let r = try await b.fetch(url)
        #expect(r.sha256 == digest && b.env.contents(r.path) == bytes)
        #expect(r.sources == ["peer \(a.name)": Int64(bytes.count)])
        #expect(r.digestSource == .peersAgree)
        #expect(origin.bytesServed == 0)
        await a.stop(); await b.stop(); await origin.stop()
    }

    @Test func strangersGet401WithNoCatalogueAndNoBytes() async throws {
        let a = try await TestNode.start(clusterKey: key)
        try a.holds(bytes, url: "http://origin.invalid/m.bin")
        for path in ["/v1/catalogue", "/v1/info", "/v1/blobs/\(digest.hex)", "/v1/blobs/\(digest.hex)/manifest",
                     "/v1/blobs/\(digest.hex)/availability"] {
            for k in [nil, otherKey] {
                let (status, body) = try await get(a, path, key: k)
                #expect(status == 401, "\(path)")
                #expect(errorCode(body) == ClusterKey.refusalCode)
                #expect(!String(decoding: body, as: UTF8.self).contains(digest.hex))
                #expect(body.count < 1024)
            }
        }
        // a member is served the same paths
        let (status, body) = try await get(a, "/v1/catalogue", key: key)
        #expect(status == 200 && String(decoding: body, as: UTF8.self).contains(digest.hex))
        let (blobStatus, blob) = try await get(a, "/v1/blobs/\(digest.hex)", key: key)
        #expect(blobStatus == 200 && blob == bytes)
        await a.stop()
    }

    @Test func replayedStaleAndFutureRequestsAreRefused() async throws {
        let a = try await TestNode.start(clusterKey: key)
        let nonce = ClusterKey.randomNonce()
        let now = Int64(Date().timeIntervalSince1970)
        #expect(try await get(a, "/v1/info", key: key, time: now, nonce: nonce).0 == 200)
        let replay = try await get(a, "/v1/info", key: key, time: now, nonce: nonce)
        #expect(replay.0 == 401 && errorCode(replay.1) == ClusterKey.refusalCode)
        #expect(try await get(a, "/v1/info", key: key, time: now - 120).0 == 401)
        #expect(try await get(a, "/v1/info", key: key, time: now + 120).0 == 401)
        // a signature for another path does not open this one
        var req = HTTPClientRequest(url: a.address.baseURL + "/v1/catalogue")
        for (n, v) in key.signRequest(method: "GET", target: "/v1/info", time: now, nonce: ClusterKey.randomNonce()) {
            req.headers.add(name: n, value: v)
        }
        #expect(try await a.env.http.execute(req, timeout: .seconds(10)).status.code == 401)
        await a.stop()
    }

    @Test func aKeyedNodeGetsNothingFromAnotherClusterOrAKeylessNodeAndTheyGetNothingFromIt() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes, headers: [("X-Linked-Etag", "\"\(digest.hex)\"")])
        let url = origin.url("/m.bin")
        let other = try await TestNode.start(clusterKey: otherKey)
        let keyless = try await TestNode.start()
        let a = try await TestNode.start(clusterKey: key)
        for n in [other, keyless, a] { _ = try await n.fetch(url) }
        // a node of cluster A with a stranger of each kind as its static peers: their catalogues are refused
        let b = try await TestNode.start(peers: [other, keyless], clusterKey: key)
        origin.resetCounters()
        let rb = try await b.fetch(url)
        #expect(rb.sha256 == digest && peerBytes(rb) == 0)
        #expect(origin.bytesServed == Int64(bytes.count))
        let status = await b.node.directory.status()
        #expect(status.count == 2 && status.allSatisfy { $0.blobs == 0 })
        // a keyless node with the keyed one as a peer gets 401s and takes the origin's bytes
        let c = try await TestNode.start(peers: [a])
        origin.resetCounters()
        let rc = try await c.fetch(url)
        #expect(rc.sha256 == digest && peerBytes(rc) == 0)
        #expect(origin.bytesServed == Int64(bytes.count))
        for n in [other, keyless, a, b, c] { await n.stop() }
        await origin.stop()
    }

    @Test func aKeylessNodeStillServesEveryoneAndBrowserRoutesStayLocal() async throws {
        let plain = try await TestNode.start()
        try plain.holds(bytes, url: "http://origin.invalid/m.bin")
        #expect(try await get(plain, "/v1/catalogue", key: nil).0 == 200)
        // a keyed node's browser routes need no key from loopback (BrowserAccess still applies)
        let a = try await TestNode.start(clusterKey: key)
        #expect(try await get(a, "/modelcache.js", key: nil).0 == 200)
        await plain.stop(); await a.stop()
    }
}

/// `--cluster-key-file` is refused with one line and exit 64 when the file is open to others, unreadable or of the
/// wrong size (`serve` before it binds anything, `fetch` before it sends anything).
@Suite struct ClusterKeyFileTests {
    func keyFile(_ bytes: [UInt8], mode: mode_t) throws -> String {
        let path = NSTemporaryDirectory() + "modelcache-key-" + UUID().uuidString
        try PosixFile.writeAtomically(path, bytes)
        chmod(path, mode)
        return path
    }

    func expectRefused(_ args: [String], containing: String) async throws {
        let r = try await runCLI(args)
        #expect(r.status == 64, "stderr: \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "stderr: \(r.stderr)")
        #expect(r.stderr.hasPrefix("modelcache: error: ") && r.stderr.contains(containing), "stderr: \(r.stderr)")
    }

    @Test func aGoodKeyFileLoadsAndBadOnesAreRefusedWithOneLine() async throws {
        let good = try keyFile(Array(repeating: 0x41, count: 32), mode: 0o600)
        #expect(try ClusterKeyFile.load(good) == ClusterKey(bytes: Array(repeating: 0x41, count: 32)))
        let open = try keyFile(Array(repeating: 0x41, count: 32), mode: 0o640)
        let short = try keyFile(Array(repeating: 0x41, count: 15), mode: 0o600)
        let long = try keyFile(Array(repeating: 0x41, count: 4097), mode: 0o600)
        let missing = NSTemporaryDirectory() + "modelcache-no-such-key-" + UUID().uuidString
        let dir = NSTemporaryDirectory() + "modelcache-cli-" + UUID().uuidString
        for cmd in [["serve", "--no-mdns", "--listen", "127.0.0.1:0"], ["fetch", "--no-node", "--peer", "127.0.0.1:1", "http://127.0.0.1:1/x"]] {
            try await expectRefused(cmd + ["--cache-dir", dir, "--cluster-key-file", open], containing: "chmod 600")
            try await expectRefused(cmd + ["--cache-dir", dir, "--cluster-key-file", short], containing: "holds 15 bytes")
            try await expectRefused(cmd + ["--cache-dir", dir, "--cluster-key-file", long], containing: "holds 4097 bytes")
            try await expectRefused(cmd + ["--cache-dir", dir, "--cluster-key-file", missing], containing: "cannot be read")
        }
        for p in [good, open, short, long] { unlink(p) }
        PosixFile.removeTree(dir)
    }
}
