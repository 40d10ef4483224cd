import Foundation
import Logging
@testable import ModelCache
import ModelCacheCore

/// A fake Hub on loopback (TestOrigin with the Hub's headers) serving one LFS file, `org/m` `w.bin`, and a node in
/// this process with the Hugging Face endpoint in front of it (127.0.0.1, port 0, no mDNS).
struct TestHubNode {
    let hub: TestOrigin
    let env: TestEnvironment
    let node: Node
    let running: Task<Void, any Error>
    let port: Int
    /// The file's URL at the node's Hub endpoint.
    var fileURL: String { "http://127.0.0.1:\(port)/org/m/resolve/main/w.bin" }

    /// `trickle`: the Hub sends the file's bytes at this rate, so a client's stream waits for chunks.
    static func start(serving bytes: [UInt8], commit: String = String(repeating: "cd", count: 20),
                      trickle: Int? = nil) async throws -> TestHubNode {
        let hub = try await TestOrigin.start()
        hub.serve("/org/m/resolve/main/w.bin", bytes, headers: [
            ("X-Repo-Commit", commit), ("X-Linked-Etag", "\"\(BlobDigest.of(bytes).hex)\""), ("X-Linked-Size", String(bytes.count))])
        hub.serve("/org/m/resolve/\(commit)/w.bin", bytes)
        if let trickle { hub.inject(.trickle(bytesPerSecond: trickle), path: "/org/m/resolve/\(commit)/") }
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
        return TestHubNode(hub: hub, env: env, node: node, running: running, port: await node.listeningPort())
    }

    func stop() async {
        running.cancel()
        _ = await running.result
        await hub.stop(); await env.close()
    }
}
