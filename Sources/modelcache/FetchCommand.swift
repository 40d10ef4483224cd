import ArgumentParser
import AsyncHTTPClient
import Foundation
import ModelCache
import ModelCacheCore

struct FetchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch a URL into the cache and print the blob's path as the last line.",
        discussion: "A cache hit returns at once with no network request. Interrupted downloads resume from their verified chunks.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The http:// or https:// URL to fetch.")
    var url: String

    @Option(help: "Expected SHA-256 of the whole file (64 hex digits); the fetch fails if the bytes differ.")
    var sha256: String?

    @Option(name: .shortAndLong, help: "Also put a copy of the file here (a reflink where the file system can); a folder (ending in /, or existing) gets it under the URL's file name. Missing folders are created.")
    var output: String?

    @Flag(help: "With -o: a hard link to the cached blob instead of a copy. It is read-only: never change it (the cache re-hashes a changed blob and evicts it).")
    var link = false

    @Option(help: "Parallel connections to the origin.")
    var connections: Int = 4

    @Flag(help: "Print one JSON object (path, sha256, size, bytes from each source, seconds) instead of the path (with --detach: the job).")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress and no summary on stderr (errors still go there).")
    var quiet = false

    @Option(name: .customLong("peer"), help: "Also take chunks from this peer, HOST:PORT (repeatable; without a running node).")
    var peers: [String] = []

    @Option(help: ArgumentHelp("With --peer: the cluster's key file (as serve's): sign requests to the peers, use only members.", valueName: "path"))
    var clusterKeyFile: String?

    @Flag(help: "Never contact the origin: peers only (offline classroom).")
    var noOrigin = false

    @Flag(help: "Do not hand the fetch to a node running on this cache; run it in this process.")
    var noNode = false

    @Flag(help: "With a running node: start the job, print its id and return at once.")
    var detach = false

    @Option(help: ArgumentHelp("Without a node: the site's caching proxy for origin requests, http://HOST:PORT, or 'none' (default: http_proxy, https_proxy and no_proxy). A running node uses its own setting.", valueName: "url|none"))
    var originProxy: String?

    @Option(help: .hidden)
    var chunkSize: Int64 = ChunkLayout.defaultChunkSize

    func validate() throws {
        guard (1...64).contains(connections) else { throw ValidationError("--connections must be between 1 and 64") }
        if let output, output.isEmpty { throw ValidationError("-o/--output needs a file or folder path") }
        if link && output == nil { throw ValidationError("--link needs -o/--output") }
        guard ChunkLayout.isValidChunkSize(chunkSize) else { throw ValidationError("--chunk-size must be a power of two between 16 KiB and 64 MiB") }
    }

    func run() async throws {
        try await runReportingErrors {
            let expected = try sha256.map { s throws(ModelCacheError) in try BlobDigest(validating: s) }
            try FetchEngine.validate(url: url)
            let staticPeers = try peers.map { p throws(ModelCacheError) in try PeerAddress(parsing: p) }
            var engineSettings = FetchEngine.Settings()
            engineSettings.originProxy = try ProxyRule.resolve(option: originProxy, environment: ProcessInfo.processInfo.environment)
            engineSettings.clusterKey = try clusterKeyFile.map { p throws(ModelCacheError) in try ClusterKeyFile.load(p) }
            let store = try global.openStore()
            let display = ProgressDisplay(name: ProgressLine.displayName(url: url), quiet: quiet)
            let request = FetchRequest(url: url, expected: expected, connections: connections, chunkSize: chunkSize, useOrigin: !noOrigin)
            // A cache hit needs neither a node nor an HTTP client (whose event-loop threads cost more than the hit).
            if let hit = try FetchEngine.cached(request, in: store) {
                try store.touch(hit.sha256)
                let result = FetchResult.hit(hit, url: url)
                display.finish(summary: display.summary(of: result))
                try finish(result)
                return
            }
            let http = HTTPClient.forModelCache(connections: connections)
            let result: FetchResult
            do {
                let engine = FetchEngine(store: store, http: http, settings: engineSettings, logger: Logging.logger("modelcache.fetch"))
                let control = ControlClient(socketPath: store.root + "/node.sock", http: http)
                if !noNode, staticPeers.isEmpty, await control.isNodeRunning() {
                    let started = Stopwatch()
                    let job = try await control.createJob(requests: [Job.Request(url: url, sha256: expected, origin: noOrigin ? false : nil)],
                                                          connections: connections)
                    if detach {
                        display.finish()
                        try? await http.shutdown()
                        if json { try printJSON(job) } else { print(job.id) }
                        return
                    }
                    let done = try await JobFollower.follow(job.id, control: control, display: display, failOffline: true)
                    var r = try done.fetchResult(seconds: started.seconds)
                    r.digestSource = try store.evidence(of: url, digest: r.sha256) ?? .user
                    result = r
                } else {
                    let directory = PeerDirectory(client: PeerClient(http: http, clusterKey: engineSettings.clusterKey,
                                                                                logger: Logging.logger("modelcache.peers")),
                                                  selfID: try? store.nodeID(), logger: Logging.logger("modelcache.peers"))
                    for p in staticPeers { await directory.addStatic(p) }
                    if !staticPeers.isEmpty { display.waiting("asking \(staticPeers.count) peer\(staticPeers.count == 1 ? "" : "s")") }
                    await directory.refreshAll()
                    display.waiting("connecting to \(URL(string: url)?.host ?? "the origin")")
                    let interrupt = InterruptHint(display: display, url: url)
                    defer { interrupt.cancel() }
                    result = try await engine.fetch(request, peers: await directory.view(),
                                                    progress: { p in display.update(downloaded: p.downloaded, total: p.total, sources: p.sources) })
                }
                display.finish(summary: display.summary(of: result))
                try? await http.shutdown()
            } catch {
                display.finish()
                try? await http.shutdown()
                throw error
            }
            try finish(result)
        }
    }

    /// Places the blob at `-o` when asked, then prints the result (JSON or the blob's path).
    func finish(_ result: FetchResult) throws {
        if let output { try place(result.path, at: output) }
        if json { try printJSON(result) } else { print(result.path) }
    }

    func place(_ blob: String, at output: String) throws {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory)
        guard let dest = OutputTarget.destination(output: output, isExistingDirectory: exists && isDirectory.boolValue, url: url) else {
            throw ModelCacheError.io(path: output, detail: "the URL has no file name to use in this folder: give -o FOLDER/NAME")
        }
        try FilePlacement.place(blob: blob, at: dest, link: link)
    }
}

extension FetchResult: FetchResultLike {}

/// Ctrl-C during a fetch without a node: the verified chunks stay in the cache's partial folder; say so, and how to
/// resume, then exit 130 (as aria2c and curl end with a line, not in silence).
final class InterruptHint {
    private let source: any DispatchSourceSignal

    init(display: ProgressDisplay, url: String) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            display.finish()
            let moved = display.movedThisRun
            Terminal.write("modelcache: interrupted after \(ProgressText.bytes(moved)) this run; the verified chunks are kept, resume with: modelcache fetch \(url)\n")
            // _exit, not exit: the other threads still run, and exit's clean-up (the runtime's static objects)
            // under them crashed a fetch that was writing progress. Nothing is buffered: stderr, the journal.
            _exit(130)
        }
        source.resume()
    }

    func cancel() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
