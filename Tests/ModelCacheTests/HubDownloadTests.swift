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
        let hub = try await TestOrigin.start()
        let bytes = testBytes(600_000)
        let digest = BlobDigest.of(bytes)
        let commit = String(repeating: "ab", count: 20)
        hub.serve("/org/m/resolve/main/w.bin", bytes, headers: [
            ("X-Repo-Commit", commit), ("X-Linked-Etag", "\"\(digest.hex)\""), ("X-Linked-Size", String(bytes.count))])
        hub.serve("/org/m/resolve/\(commit)/w.bin", bytes)
        hub.inject(.trickle(bytesPerSecond: 1_000_000), path: "/org/m/resolve/\(commit)/")  // the stream waits for chunks

        let env = try TestEnvironment()
        var settings = NodeSettings()
        (settings.listenHost, settings.listenPort, settings.mdns, settings.hfUpstream) = ("127.0.0.1", 0, false, hub.baseURL)
        var jobSettings = JobManager.Settings()
        jobSettings.chunkSize = TestEnvironment.chunk
        var logger = Logger(label: "test-hub-node")
        logger.logLevel = .critical
        let node = try Node(settings: settings, store: env.store, http: env.http, engineSettings: env.engine.settings,
                            jobSettings: jobSettings, logger: logger)
        let running = Task { try await node.run() }
        let port = await node.listeningPort()

        let response = try await env.http.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(port)/org/m/resolve/main/w.bin"), timeout: .seconds(30))
        #expect(response.status == .ok)
        let body = try await response.body.collect(upTo: 1 << 20)
        #expect(Array(buffer: body) == bytes)
        // The download was one of the node's jobs, run by its job service.
        let job = try #require(await node.jobs.list().first)
        #expect(job.title.contains("Hugging Face"))
        #expect(try await node.jobs.waitUntilFinal(job.id).state == .success)
        #expect(try env.store.lookup(digest: digest) != nil)
        running.cancel()
        _ = await running.result
        await hub.stop(); await env.close()
    }
}
