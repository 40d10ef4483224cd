import AsyncHTTPClient
import Foundation
import Logging
@testable import ModelCache
import ModelCacheCore

/// A fresh cache directory, a store, an HTTP client and an engine with fast retries, torn down by `close()`.
struct TestEnvironment {
    let dir: String
    let store: Store
    let http: HTTPClient
    let engine: FetchEngine

    static let chunk: Int64 = 64 * 1024

    /// The level of the engine's and the test nodes' logs: critical (quiet), or debug with MODELCACHE_TEST_LOG set.
    static var logLevel: Logger.Level { ProcessInfo.processInfo.environment["MODELCACHE_TEST_LOG"] != nil ? .debug : .critical }

    /// `maxSpanBytes`: the engine's span size (nil: its default; 0: one chunk per request).
    /// `originStall`: the end-game's origin stall (nil: its default, 5 s).
    /// `peerChunkTimeout`: how long a peer may take for one chunk (nil: the engine's default, 30 s).
    init(maxAttempts: Int = 5, originProxy: ProxyRule = .direct, maxSpanBytes: Int64? = nil, originStall: Duration? = nil,
         peerChunkTimeout: Duration? = nil) throws {
        dir = NSTemporaryDirectory() + "modelcache-test-" + UUID().uuidString
        store = try Store(root: dir)
        http = HTTPClient.forModelCache(readTimeout: .seconds(5))
        var settings = FetchEngine.Settings()
        settings.scheduler.retryBaseDelay = .milliseconds(20)
        settings.scheduler.maxAttempts = maxAttempts
        settings.originProxy = originProxy
        if let maxSpanBytes { settings.scheduler.maxSpanBytes = maxSpanBytes }
        if let originStall { settings.scheduler.endGameOriginStall = originStall }
        if let peerChunkTimeout { settings.peerChunkTimeout = peerChunkTimeout }
        var logger = Logger(label: "test")
        logger.logLevel = Self.logLevel
        engine = FetchEngine(store: store, http: http, settings: settings, logger: logger)
    }

    func request(_ url: String, sha256: BlobDigest? = nil, connections: Int = 4) -> FetchRequest {
        FetchRequest(url: url, expected: sha256, connections: connections, chunkSize: Self.chunk)
    }

    func close() async {
        try? await http.shutdown()
        PosixFile.removeTree(dir)
    }

    /// Nothing in blobs/ that is not in the index, and no leftover partial download.
    var partials: [String] { PosixFile.list(store.partialDir) }
    var blobFiles: [String] { PosixFile.list(store.blobsDir) }

    func contents(_ path: String) -> [UInt8] { PosixFile.readAll(path) ?? [] }
}

/// The built `modelcache` binary (MODELCACHE_BIN, else .build/debug/modelcache of this package).
let modelcacheBinary: String = {
    if let b = ProcessInfo.processInfo.environment["MODELCACHE_BIN"] { return b }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/modelcache").path
}()

let isRoot = getuid() == 0

/// How many chunks the (single) download in progress under a cache directory has journalled as verified.
func journalledChunks(in cacheDir: String) -> Int {
    let journal = PosixFile.list(cacheDir + "/partial").first.map { cacheDir + "/partial/" + $0 + "/chunks.journal" }
    return journal.flatMap(PosixFile.readAll).map { $0.filter { $0 == UInt8(ascii: "\n") }.count } ?? 0
}
