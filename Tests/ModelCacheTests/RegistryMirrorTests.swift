import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
@testable import ModelCache
import ModelCacheCore

/// The node's registry mirror in process (protocol §16): a fake upstream that wants bearer tokens (TestRegistry),
/// clients speaking the distribution API to the node.
@Suite struct RegistryMirrorTests {
    let config = Array("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"}}".utf8)
    let layer1 = testBytes(700_000, seed: 11)
    let layer2 = testBytes(300_000, seed: 12)

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        func header(_ n: String) -> String? { headers.first(name: n) }
    }

    /// The test's own client: a 30 s read time-out, so that a loaded machine (the whole suite at once, on 2 cores)
    /// gives the node time to retry its upstream (the node's own client waits 5 s) before the test gives up.
    static let client = HTTPClient.forModelCache(readTimeout: .seconds(30))

    static func get(_ url: String, method: HTTPMethod = .GET, headers: [(String, String)] = []) async throws -> Answer {
        var req = HTTPClientRequest(url: url)
        req.method = method
        for (n, v) in headers { req.headers.add(name: n, value: v) }
        let res = try await client.execute(req, timeout: .seconds(60))
        let body = method == .HEAD ? [] : Array(buffer: try await res.body.collect(upTo: 8 << 20))
        return Answer(status: Int(res.status.code), headers: res.headers, body: body)
    }

    static let accept = [("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")]

    @Test func imageIsPulledThroughTheNodeWithAnonymousTokensAndItsBlobsBecomeCacheBlobsInJobs() async throws {
        let upstream = try await TestRegistry.start()
        let (mdigest, mbody) = upstream.push("library/tiny", tag: "v1", config: config, layers: [layer1, layer2])
        let node = try await TestNode.start(registryMirrors: [RegistryMirror(name: "test.io", base: upstream.baseURL)],
                                            registryTagTTL: .seconds(600))
        let base = "http://127.0.0.1:\(node.port)"

        let ping = try await Self.get(base + "/v2/")
        #expect(ping.status == 200 && ping.header("Docker-Distribution-API-Version") == "registry/2.0")
        let m = try await Self.get(base + "/v2/library/tiny/manifests/v1", headers: Self.accept)
        #expect(m.status == 200)
        #expect(m.body == mbody)
        #expect(m.header("Docker-Content-Digest") == "sha256:" + mdigest.hex)
        #expect(m.header("Content-Type") == "application/vnd.docker.distribution.manifest.v2+json")
        #expect(upstream.tokenRequests >= 1)  // the node did the token dance itself
        let byDigest = try await Self.get(base + "/v2/library/tiny/manifests/sha256:\(mdigest.hex)", method: .HEAD)
        #expect(byDigest.status == 200 && byDigest.header("Content-Length") == String(mbody.count))

        let d1 = BlobDigest.of(layer1), d2 = BlobDigest.of(layer2)
        let b1 = try await Self.get(base + "/v2/library/tiny/blobs/sha256:\(d1.hex)")
        #expect(b1.status == 200 && b1.body == layer1)
        let part = try await Self.get(base + "/v2/library/tiny/blobs/sha256:\(d2.hex)", headers: [("Range", "bytes=1000-1999")])
        #expect(part.status == 206 && part.body == Array(layer2[1000..<2000]))
        // Each blob was one of the node's jobs, titled with the image it belongs to, and is a cache blob.
        let jobs = await node.node.jobs.list()
        #expect(jobs.count == 2)
        #expect(jobs.allSatisfy { $0.title.hasPrefix("test.io/library/tiny:v1") })
        for j in jobs { #expect(try await node.node.jobs.waitUntilFinal(j.id).state == .success) }
        #expect(try node.env.store.lookup(digest: d1)?.isPrivate == false)
        #expect(try node.env.store.lookup(digest: d2) != nil)

        // Again: the tag (within its time-to-live), the manifest and the blobs come from the node alone.
        let before = upstream.requests(under: "")
        let again = try await Self.get(base + "/v2/library/tiny/manifests/v1", headers: Self.accept)
        #expect(again.status == 200 && again.body == mbody)
        let b1again = try await Self.get(base + "/v2/library/tiny/blobs/sha256:\(d1.hex)")
        #expect(b1again.body == layer1)
        #expect(upstream.requests(under: "") == before)
        // The same image named the other two ways a client picks the upstream: containerd's ns=, a path prefix.
        for path in ["/v2/library/tiny/manifests/v1?ns=test.io", "/v2/test.io/library/tiny/manifests/v1"] {
            let other = try await Self.get(base + path, headers: Self.accept)
            #expect(other.status == 200 && other.body == mbody, "\(path)")
        }
        await node.stop(); await upstream.stop()
    }

    @Test func offlineTheLastKnownTagIsServedAndSaysSo() async throws {
        let upstream = try await TestRegistry.start()
        let (mdigest, mbody) = upstream.push("library/tiny", tag: "v1", config: config, layers: [layer1])
        let node = try await TestNode.start(registryMirrors: [RegistryMirror(name: "test.io", base: upstream.baseURL)])
        let base = "http://127.0.0.1:\(node.port)"
        let first = try await Self.get(base + "/v2/library/tiny/manifests/v1", headers: Self.accept)
        #expect(first.status == 200 && first.header(RegistryService.staleTagHeader) == nil)
        let blob = try await Self.get(base + "/v2/library/tiny/blobs/sha256:\(BlobDigest.of(layer1).hex)")
        #expect(blob.body == layer1)
        upstream.setDown(true)
        let stale = try await Self.get(base + "/v2/library/tiny/manifests/v1", headers: Self.accept)
        #expect(stale.status == 200 && stale.body == mbody)
        #expect(stale.header(RegistryService.staleTagHeader) != nil)
        #expect(stale.header("Docker-Content-Digest") == "sha256:" + mdigest.hex)
        let blobAgain = try await Self.get(base + "/v2/library/tiny/blobs/sha256:\(BlobDigest.of(layer1).hex)")
        #expect(blobAgain.status == 200 && blobAgain.body == layer1)
        // A tag never seen: 503 with the registry's error shape.
        let unknown = try await Self.get(base + "/v2/library/tiny/manifests/v2", headers: Self.accept)
        #expect(unknown.status == 503)
        #expect(String(decoding: unknown.body, as: UTF8.self).contains("\"errors\""))
        await node.stop(); await upstream.stop()
    }

    @Test func aPrivateRepositoryNeedsItsCredentialsAndItsBlobsStayPrivate() async throws {
        let upstream = try await TestRegistry.start()
        upstream.push("team/secret", tag: "v1", config: config, layers: [layer1])
        upstream.makePrivate("team/secret", secret: "letmein")
        let node = try await TestNode.start(registryMirrors: [RegistryMirror(name: "test.io", base: upstream.baseURL)])
        let base = "http://127.0.0.1:\(node.port)"
        let d1 = BlobDigest.of(layer1)

        let refused = try await Self.get(base + "/v2/team/secret/manifests/v1", headers: Self.accept)
        #expect(refused.status == 401)
        #expect(refused.header("WWW-Authenticate")?.hasPrefix("Bearer realm=") == true)  // the client can do its own dance
        let cred = Self.accept + [("Authorization", "Bearer letmein")]
        let m = try await Self.get(base + "/v2/team/secret/manifests/v1", headers: cred)
        #expect(m.status == 200)
        let blob = try await Self.get(base + "/v2/team/secret/blobs/sha256:\(d1.hex)", headers: [("Authorization", "Bearer letmein")])
        #expect(blob.status == 200 && blob.body == layer1)
        #expect(try node.env.store.lookup(digest: d1)?.isPrivate == true)
        #expect(await node.node.jobs.list().isEmpty)  // a token is never persisted in a job
        // Without the credentials: neither the manifest (cached) nor the blob (stored).
        let blobRefused = try await Self.get(base + "/v2/team/secret/blobs/sha256:\(d1.hex)")
        #expect(blobRefused.status == 401 && blobRefused.body != layer1)
        let byDigest = try await Self.get(base + "/v2/team/secret/manifests/v1", headers: Self.accept)
        #expect(byDigest.status == 401)
        // Nor a peer: the blob is not in the catalogue, and a local-only question gets nothing.
        let catalogue = try await Self.get(base + "/v1/catalogue")
        #expect(!String(decoding: catalogue.body, as: UTF8.self).contains(d1.hex))
        let peerAsk = try await Self.get(base + "/v2/team/secret/blobs/sha256:\(d1.hex)", headers: [(HubService.localOnlyHeader, "1")])
        #expect(peerAsk.status == 404)
        await node.stop(); await upstream.stop()
    }

    @Test func withTheUpstreamDownANodeGetsTheImageFromItsPeerAndALyingPeerIsCaught() async throws {
        let upstream = try await TestRegistry.start()
        let (_, mbody) = upstream.push("library/tiny", tag: "v1", config: config, layers: [layer1, layer2])
        let mirror = RegistryMirror(name: "test.io", base: upstream.baseURL)
        let a = try await TestNode.start(registryMirrors: [mirror])
        let aBase = "http://127.0.0.1:\(a.port)"
        _ = try await Self.get(aBase + "/v2/library/tiny/manifests/v1", headers: Self.accept)
        for d in [BlobDigest.of(config), BlobDigest.of(layer1), BlobDigest.of(layer2)] {
            #expect(try await Self.get(aBase + "/v2/library/tiny/blobs/sha256:\(d.hex)").status == 200)
        }
        // B with the upstream down: the manifest from A's local answer, every blob from A.
        upstream.setDown(true)
        let b = try await TestNode.start(peers: [a], registryMirrors: [mirror])
        let bBase = "http://127.0.0.1:\(b.port)"
        let m = try await Self.get(bBase + "/v2/library/tiny/manifests/v1", headers: Self.accept)
        #expect(m.status == 200 && m.body == mbody)
        #expect(m.header(RegistryService.staleTagHeader) == "peers")
        let blob = try await Self.get(bBase + "/v2/library/tiny/blobs/sha256:\(BlobDigest.of(layer1).hex)")
        #expect(blob.status == 200 && blob.body == layer1)

        // C, with the upstream back, beside a peer whose copy of layer 2 is forged: caught, quarantined, and the
        // client still gets the right bytes.
        upstream.setDown(false)
        try a.corrupt(BlobDigest.of(layer2))
        let c = try await TestNode.start(peers: [a], registryMirrors: [mirror])
        let cBase = "http://127.0.0.1:\(c.port)"
        _ = try await Self.get(cBase + "/v2/library/tiny/manifests/v1", headers: Self.accept)
        let good = try await Self.get(cBase + "/v2/library/tiny/blobs/sha256:\(BlobDigest.of(layer2).hex)")
        #expect(good.status == 200 && good.body == layer2)
        #expect(await c.node.directory.status().first { $0.name == a.name }?.quarantined == true)
        await a.stop(); await b.stop(); await c.stop(); await upstream.stop()
    }

    /// An upstream that serves wrong bytes for a blob: the client never gets the whole blob (the last byte waits for
    /// the whole-blob check), and nothing is stored.
    @Test func aCorruptBlobNeverReachesTheClientWhole() async throws {
        let upstream = try await TestRegistry.start()
        upstream.push("library/tiny", tag: "v1", config: config, layers: [layer1])
        let d = BlobDigest.of(layer1)
        upstream.corrupt(d)
        let node = try await TestNode.start(registryMirrors: [RegistryMirror(name: "test.io", base: upstream.baseURL)])
        let base = "http://127.0.0.1:\(node.port)"
        _ = try await Self.get(base + "/v2/library/tiny/manifests/v1", headers: Self.accept)
        var got: [UInt8] = []
        do {
            got = try await Self.get(base + "/v2/library/tiny/blobs/sha256:\(d.hex)").body
        } catch {
            got = []  // the connection was cut: the client has nothing it could take for the blob
        }
        #expect(got.count < layer1.count)
        #expect(try node.env.store.lookup(digest: d) == nil)
        await node.stop(); await upstream.stop()
    }

    /// A job resumed after a restart asks for a blob before any manifest request: the node learns the upstream's
    /// challenge from its `/v2/` and fetches with an anonymous token (the upstream refuses anything else).
    @Test func aBlobJobWithoutAManifestRequestGetsItsTokenFromTheUpstreamsChallenge() async throws {
        let upstream = try await TestRegistry.start()
        upstream.push("library/tiny", tag: "v1", config: config, layers: [layer1])
        let node = try await TestNode.start(registryMirrors: [RegistryMirror(name: "test.io", base: upstream.baseURL)])
        let d = BlobDigest.of(layer1)
        let job = try await node.node.jobs.create(id: nil, title: "resumed",
                                                  requests: [Job.Request(url: upstream.baseURL + "/v2/library/tiny/blobs/sha256:" + d.hex, sha256: d)])
        let done = try await node.node.jobs.waitUntilFinal(job.id)
        #expect(done.state == .success, "\(done.message ?? "")")
        #expect(try node.env.store.lookup(digest: d) != nil)
        #expect(upstream.tokenRequests >= 1)
        await node.stop(); await upstream.stop()
    }

    /// A token is kept until shortly before it expires, then asked for again (so a long download gets fresh ones).
    /// On the upstream's own clock (moved by hand: a real wait failed whenever the loaded machine took longer than the
    /// token's renewal margin between two calls).
    @Test func anonymousTokensAreKeptUntilShortlyBeforeTheyExpire() async throws {
        let upstream = try await TestRegistry.start()
        upstream.setTokenLifetime(4)  // renewed after 2 s (half its life: less than the usual 30 s margin)
        let env = try TestEnvironment()
        var logger = Logger(label: "test-registry-upstream")
        logger.logLevel = .critical
        let clock = Mutex(ContinuousClock.now)
        let up = RegistryUpstream(mirror: RegistryMirror(name: "test.io", base: upstream.baseURL), http: env.http, route: .direct,
                                  logger: logger, now: { clock.withLock { $0 } })
        let url = up.blobURL("library/tiny", BlobDigest.of(layer1))
        let first = await up.credentials(for: url)
        #expect(first == "Bearer anon.repository.library/tiny.pull")
        clock.withLock { $0 += .milliseconds(1900) }
        #expect(await up.credentials(for: url) == first)
        #expect(upstream.tokenRequests == 1)  // kept until 2 s after it was asked for
        clock.withLock { $0 += .milliseconds(200) }
        #expect(await up.credentials(for: url) == first)
        #expect(upstream.tokenRequests == 2)  // asked for again
        clock.withLock { $0 += .milliseconds(1900) }
        #expect(await up.credentials(for: url) == first)
        #expect(upstream.tokenRequests == 2)  // the new one is kept in turn
        #expect(await up.credentials(for: "http://elsewhere/v2/x/blobs/sha256:00") == nil)  // not this upstream's
        await env.close(); await upstream.stop()
    }

    @Test func badNamesAndWritesAreRefusedBeforeAnyUpstreamRequest() async throws {
        let upstream = try await TestRegistry.start()
        let node = try await TestNode.start(registryMirrors: [RegistryMirror(name: "test.io", base: upstream.baseURL)])
        let base = "http://127.0.0.1:\(node.port)"
        for path in ["/v2/Library/x/manifests/v1", "/v2/a//b/manifests/v1", "/v2/a/b/manifests/..%2F", "/v2/a/blobs/sha256:xyz",
                     "/v2/a/blobs/md5:0123"] {
            let a = try await Self.get(base + path)
            #expect(a.status == 400, "\(path)")
        }
        let other = try await Self.get(base + "/v2/a/tags/list")
        #expect(other.status == 404)
        let unknownNS = try await Self.get(base + "/v2/a/manifests/v1?ns=ghcr.io")
        #expect(unknownNS.status == 404)
        #expect(upstream.requests(under: "") == 0)
        await node.stop(); await upstream.stop()
    }
}
