import AsyncHTTPClient
import Foundation
import Logging
@testable import ModelCache
import ModelCacheCore

/// A node running in this process on 127.0.0.1, port 0, static peers only (no mDNS).
final class TestNode: Sendable {
    let env: TestEnvironment
    let node: Node
    let task: Task<Void, any Error>
    let port: Int
    var address: PeerAddress { PeerAddress(host: "127.0.0.1", port: port) }
    var name: String { address.description }

    static func start(peers: [TestNode] = [], extraPeers: [PeerAddress] = [], maxCacheSize: Int64? = nil,
                      maxOriginRate: Int64? = nil, maxUploadRate: Int64? = nil, allowedOrigins: [String] = [],
                      clusterKey: ClusterKey? = nil, registryMirrors: [RegistryMirror] = [],
                      registryTagTTL: Duration = .zero,
                      env existing: TestEnvironment? = nil) async throws -> TestNode {
        let env = try existing ?? TestEnvironment()
        var settings = NodeSettings()
        settings.listenHost = "127.0.0.1"
        settings.listenPort = 0
        settings.mdns = false
        settings.staticPeers = peers.map(\.address) + extraPeers
        settings.name = "test"
        settings.maxUploadRate = maxUploadRate
        settings.allowedOrigins = allowedOrigins
        settings.clusterKey = clusterKey
        settings.registryMirrors = RegistryMirrors(registryMirrors)
        settings.registryTagTTL = registryTagTTL
        var logger = Logger(label: "test-node")
        logger.logLevel = TestEnvironment.logLevel
        var engineSettings = env.engine.settings
        engineSettings.maxCacheSize = maxCacheSize
        engineSettings.maxOriginRate = maxOriginRate
        var jobSettings = JobManager.Settings()
        jobSettings.offlineFirstRetry = .milliseconds(100)
        jobSettings.offlineMaxRetry = .milliseconds(400)
        jobSettings.chunkSize = TestEnvironment.chunk
        let node = try Node(settings: settings, store: env.store, http: env.http, engineSettings: engineSettings,
                            jobSettings: jobSettings, logger: logger)
        let task = Task { try await node.run() }
        let port = await node.listeningPort()
        return TestNode(env: env, node: node, task: task, port: port)
    }

    private init(env: TestEnvironment, node: Node, task: Task<Void, any Error>, port: Int) {
        self.env = env
        self.node = node
        self.task = task
        self.port = port
    }

    func fetch(_ url: String, sha256: BlobDigest? = nil, useOrigin: Bool = true,
               chunkSize: Int64 = TestEnvironment.chunk) async throws -> FetchResult {
        var r = env.request(url, sha256: sha256)
        r.chunkSize = chunkSize
        r.useOrigin = useOrigin
        return try await node.fetch(r)
    }

    /// Imports bytes as if fetched from `url`, cut in test-sized chunks.
    func holds(_ bytes: [UInt8], url: String) throws {
        let file = env.dir + "/import-" + UUID().uuidString
        try PosixFile.writeAtomically(file, bytes)
        _ = try env.store.importFile(file, url: url, chunkSize: TestEnvironment.chunk)
        unlink(file)
    }

    /// Flips one byte in every chunk of a stored blob (a peer with forged bytes). The new stat is recorded as if at
    /// commit, so this node serves them: a liar runs its own code; an honest node would re-hash and evict them.
    func corrupt(_ d: BlobDigest) throws {
        let path = env.store.blobPath(d)
        chmod(path, 0o644)
        var bytes = try #require(PosixFile.readAll(path))
        for i in stride(from: 100, to: bytes.count, by: Int(TestEnvironment.chunk)) { bytes[i] ^= 0x55 }
        try PosixFile.writeAtomically(path, bytes)
        try env.store.recordStat(of: d)
    }

    func stop(keepCache: Bool = false) async {
        task.cancel()
        _ = await task.result
        if !keepCache { await env.close() }
    }

    /// Waits (bounded) until a job is final, or until `until` holds.
    func waitForJob(_ id: String, timeout: Duration = .seconds(30), until: (Job) -> Bool = { $0.state.isFinal }) async throws -> Job {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let j = try await node.jobs.get(id)
            if until(j) { return j }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await node.jobs.get(id)
    }
}

import Testing

/// A fake peer made from `TestOrigin`: serves a catalogue, a manifest and bytes for one blob, with the faults
/// a test injects (on paths under `/v1/blobs/`).
struct FakePeer {
    let server: TestOrigin
    var address: PeerAddress { PeerAddress(host: "127.0.0.1", port: server.port) }
    var name: String { address.description }

    static func start(claims entries: [Catalogue.Entry], serving bytes: [UInt8], as digest: BlobDigest,
                      manifest: Manifest? = nil, node: String = "fa4efa4efa4efa4e") async throws -> FakePeer {
        let server = try await TestOrigin.start()
        let cat = Catalogue(node: node, blobs: entries)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        server.serve("/v1/catalogue", Array(try enc.encode(cat)))
        let m = try manifest ?? FileHasherTestHelper.manifest(bytes, digest: digest)
        server.serve("/v1/blobs/\(digest.hex)/manifest", Array(try enc.encode(m)))
        server.serve("/v1/blobs/\(digest.hex)", bytes)
        return FakePeer(server: server)
    }
}

/// An origin serving `bytes` at `/m.bin` (no digest header) and a fake peer that lists the same blob for that URL and
/// serves it with `fault` on its blob transfers: a peer that is slow, stalls, dies or refuses while the origin is fine.
struct OriginAndFaultyPeer {
    let origin: TestOrigin
    let peer: FakePeer
    let url: String

    static func start(_ bytes: [UInt8], peerFault fault: TestOrigin.Fault) async throws -> OriginAndFaultyPeer {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", bytes)
        let url = origin.url("/m.bin")
        let digest = BlobDigest.of(bytes)
        let entry = Catalogue.Entry(sha256: digest, size: Int64(bytes.count), chunkSize: TestEnvironment.chunk, urls: [url])
        let peer = try await FakePeer.start(claims: [entry], serving: bytes, as: digest)
        peer.server.inject(fault, path: "/v1/blobs/\(digest.hex)")
        return OriginAndFaultyPeer(origin: origin, peer: peer, url: url)
    }

    func stop() async {
        await peer.server.stop()
        await origin.stop()
    }
}

enum FileHasherTestHelper {
    /// The manifest of `bytes` in test-sized chunks, claiming to be `digest` (which may be a lie).
    static func manifest(_ bytes: [UInt8], digest: BlobDigest? = nil) throws -> Manifest {
        let layout = try ChunkLayout(size: Int64(bytes.count), chunkSize: TestEnvironment.chunk)
        let chunks = (0..<layout.count).map { i in
            let r = layout.range(of: i)
            return BlobDigest.of(bytes[Int(r.lowerBound)..<Int(r.upperBound)])
        }
        return try Manifest(sha256: digest ?? BlobDigest.of(bytes), layout: layout, chunks: chunks)
    }
}
