import AsyncHTTPClient
import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Gated and private Hub files: the token goes to the origin's own host only, and the blob stays off the
/// catalogue, the swarm and the peer API until a public source delivers the same bytes.
@Suite(.serialized) struct PrivateFetchTests {
    @Test func tokenNeverFollowsARedirectToAnotherHost() async throws {
        let hub = try await TestOrigin.start()
        let cdn = try await TestOrigin.start()
        let env = try TestEnvironment()
        let bytes = testBytes(300_000)
        let digest = BlobDigest.of(bytes)
        cdn.serve("/cdn/blob", bytes)
        hub.redirect("/org/gated/resolve/main/w.bin", to: cdn.url("/cdn/blob"))
        hub.serve("/org/gated/resolve/main/w.bin", [], headers: [("X-Linked-Etag", "\"\(digest.hex)\""), ("X-Linked-Size", "300000")])
        var request = env.request(hub.url("/org/gated/resolve/main/w.bin"))
        request.originHeaders = [("Authorization", "Bearer hf_secret")]
        request.isPrivate = true
        let r = try await env.engine.fetch(request)
        #expect(r.sha256 == digest)
        #expect(hub.authorizedPaths == ["/org/gated/resolve/main/w.bin"])
        #expect(cdn.authorizedPaths.isEmpty)
        #expect(cdn.gets > 0)
        await hub.stop(); await cdn.stop(); await env.close()
    }

    @Test func sameOriginDecidesWhereCredentialsGo() {
        #expect(OriginClient.sameOrigin("https://hf.co/a", "https://hf.co:443/b"))
        #expect(!OriginClient.sameOrigin("https://cdn.hf.co/a", "https://hf.co/b"))
        #expect(!OriginClient.sameOrigin("http://hf.co/a", "https://hf.co/a"))
        #expect(!OriginClient.sameOrigin("https://hf.co:8443/a", "https://hf.co/a"))
    }

    @Test func privateBlobIsNeitherAdvertisedNorServedUntilAPublicSourceHasIt() async throws {
        let origin = try await TestOrigin.start()
        let node = try await TestNode.start()
        let bytes = testBytes(200_000, seed: 7)
        let digest = BlobDigest.of(bytes)
        origin.serve("/gated/w.bin", bytes)
        var request = node.env.request(origin.url("/gated/w.bin"), sha256: digest)
        request.isPrivate = true
        _ = try await node.node.fetch(request)
        #expect(try node.env.store.lookup(digest: digest)?.isPrivate == true)

        let http = node.env.http
        let base = node.address.baseURL
        func status(_ path: String) async throws -> Int {
            let res = try await http.execute(HTTPClientRequest(url: base + path), timeout: .seconds(5))
            _ = try await res.body.collect(upTo: 1 << 20)
            return Int(res.status.code)
        }
        func catalogue() async throws -> Catalogue {
            let res = try await http.execute(HTTPClientRequest(url: base + "/v1/catalogue"), timeout: .seconds(5))
            return try JSONDecoder().decode(Catalogue.self, from: Data(buffer: try await res.body.collect(upTo: 1 << 20)))
        }
        #expect(try await catalogue().entry(digest) == nil)
        #expect(try await status("/v1/blobs/\(digest.hex)") == 404)
        #expect(try await status("/v1/blobs/\(digest.hex)/manifest") == 404)
        #expect(try await status("/v1/blobs/\(digest.hex)/availability") == 404)

        // A public Hub file with the same sha256 (the Hub endpoint marks the blob public): now it is the LAN's.
        origin.serve("/public/w.bin", bytes)
        _ = try await node.node.fetch(node.env.request(origin.url("/public/w.bin"), sha256: digest))
        try node.env.store.markPublic(digest)
        #expect(try await catalogue().entry(digest) != nil)
        #expect(try await status("/v1/blobs/\(digest.hex)") == 200)
        await node.stop()
        await origin.stop()
    }
}
