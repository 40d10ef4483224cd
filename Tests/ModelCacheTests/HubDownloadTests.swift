import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Testing
@testable import ModelCache
import ModelCacheCore

/// The node's Hugging Face endpoint in process: a fake Hub on loopback (TestOrigin with the Hub's headers).
@Suite struct HubDownloadTests {
    @Test func hubFileIsDownloadedByANodeOwnedJobAndStreamedWhileItsChunksVerify() async throws {
        let bytes = testBytes(600_000)
        let digest = BlobDigest.of(bytes)
        let t = try await TestHubNode.start(serving: bytes, commit: String(repeating: "ab", count: 20), trickle: 1_000_000)
        let (env, node) = (t.env, t.node)

        let response = try await env.http.execute(
            HTTPClientRequest(url: t.fileURL), timeout: .seconds(30))
        #expect(response.status == .ok)
        let body = try await response.body.collect(upTo: 1 << 20)
        #expect(Array(buffer: body) == bytes)
        // The download was one of the node's jobs, run by its job service.
        let job = try #require(await node.jobs.list().first)
        #expect(job.title.contains("Hugging Face"))
        #expect(try await node.jobs.waitUntilFinal(job.id).state == .success)
        #expect(try env.store.lookup(digest: digest) != nil)
        await t.stop()
    }
}
