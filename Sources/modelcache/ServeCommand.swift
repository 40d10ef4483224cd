import ArgumentParser
import AsyncHTTPClient
import Foundation
import ModelCache
import ModelCacheCore

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a node: serve the cache to LAN peers, find peers over mDNS, fetch through them.",
        discussion: "SIGTERM or SIGINT shut the node down gracefully. Fetches on the same cache directory go through it.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Peer API address, HOST:PORT (default 0.0.0.0:\(NodeSettings.defaultPort)).")
    var listen: String = "0.0.0.0:\(NodeSettings.defaultPort)"

    @Option(name: .customLong("peer"), help: "A static peer, HOST:PORT (repeatable).")
    var peers: [String] = []

    @Flag(help: "Do not publish or browse over mDNS (static peers only).")
    var noMdns = false

    @Option(help: "mDNS instance name (default: the host name).")
    var name: String?

    @Option(name: [.customLong("max-upload-connections"), .customLong("max-uploads")],
            help: "Concurrent uploads to peers (more get 503 and retry).")
    var maxUploads: Int = 16

    @Option(help: "Bytes per second from origins, across all jobs (suffixes K, M, G: 25M = 25 MiB/s = ~210 Mbit/s).")
    var maxOriginRate: String?

    @Option(help: "Bytes per second uploaded to peers, all together (suffixes K, M, G).")
    var maxUploadRate: String?

    @Option(help: ArgumentHelp("The Hugging Face Hub behind the node's Hub endpoint (clients set HF_ENDPOINT=http://<node>); 'none' turns the endpoint off.", valueName: "url"))
    var hfUpstream: String = NodeSettings.defaultHFUpstream

    @Option(help: "Cache size limit in bytes (suffixes K, M, G, T): least-recently-used unpinned blobs are evicted.")
    var maxSize: String?

    @Option(help: "Seconds a connection may stay without a request (also the time to send a request's headers).")
    var idleTimeout: String = "30"

    @Option(help: "Connections accepted at once on the peer port (lowered to what the open-file limit allows).")
    var maxConnections: String = "512"

    @Option(name: .customLong("allow-origin"),
            help: "A web origin whose pages may use the browser API, e.g. http://localhost:8000 (repeatable; none by default).")
    var allowOrigins: [String] = []

    @Option(help: ArgumentHelp("Permission bits of the control socket, in octal: 0600 lets only this user run commands through the node; 0660 also its group (the systemd unit's).", valueName: "mode"))
    var controlSocketMode: String = "0600"

    @Option(help: ArgumentHelp("Log lines on stderr: text, logfmt (key=value, one line per event) or json (one object per line).", valueName: "format"))
    var logFormat: LogFormat = .text

    func run() async throws {
        try await runReportingErrors {
            Logging.bootstrapOnce(verbose: global.verbose, format: logFormat)  // before openStore's default bootstrap
            var settings = NodeSettings()
            settings.controlSocketMode = try FileModeOption.socketMode(controlSocketMode, option: "--control-socket-mode")
            let listenAddress = try PeerAddress(parsing: listen, allowAnyPort: true, role: "--listen address")
            settings.listenHost = listenAddress.host
            settings.listenPort = listenAddress.port
            settings.staticPeers = try peers.map { p throws(ModelCacheError) in try PeerAddress(parsing: p) }
            settings.mdns = !noMdns
            settings.idleTimeout = .seconds(try CommandLineNumber.count(idleTimeout, option: "--idle-timeout", in: 1...86_400))
            settings.maxConnections = try CommandLineNumber.count(maxConnections, option: "--max-connections", in: 1...1_000_000)
            if let name { settings.name = name }
            settings.maxUploads = try CommandLineNumber.check(maxUploads, option: "--max-upload-connections", in: 1...4096)
            if hfUpstream == "none" {
                settings.hfUpstream = nil
            } else {
                try FetchEngine.validate(url: hfUpstream)
                settings.hfUpstream = hfUpstream
            }
            settings.maxUploadRate = try maxUploadRate.map { r throws(ModelCacheError) in try CommandLineNumber.size(r, option: "--max-upload-rate") }
            settings.allowedOrigins = try allowOrigins.map { o in
                guard let n = BrowserAccess.normalizedOrigin(o) else {
                    throw ValidationError("--allow-origin '\(o)' is not a web origin: give scheme://host[:port], e.g. http://localhost:8000")
                }
                return n
            }
            var engineSettings = FetchEngine.Settings()
            engineSettings.maxCacheSize = try maxSize.map { s throws(ModelCacheError) in try CommandLineNumber.size(s, option: "--max-size") }
            engineSettings.maxOriginRate = try maxOriginRate.map { r throws(ModelCacheError) in try CommandLineNumber.size(r, option: "--max-origin-rate") }
            let store = try global.openStore()
            let lock = try await ServeCommand.lockCache(store.root)
            defer { withExtendedLifetime(lock) {} }  // held until the node has exited
            store.removeOwnTemporaries()
            // Created once every argument is checked: a client dropped without shutdown() traps.
            let http = HTTPClient.forModelCache(readTimeout: .seconds(10))
            let node: Node
            do {
                node = try Node(settings: settings, store: store, http: http, engineSettings: engineSettings,
                                logger: Logging.logger("modelcache.node"))
            } catch {
                try? await http.shutdown()
                throw error
            }
            Logging.banner("modelcache: node \(node.nodeID) '\(settings.name)' serving \(store.root) on \(listenAddress); control socket \(node.controlSocketPath); status page http://127.0.0.1:\(listenAddress.port)/",
                           format: logFormat, metadata: ["node.id": node.nodeID, "node.name": settings.name, "cache.dir": store.root,
                                                         "listen": "\(listenAddress)", "control.socket": node.controlSocketPath])
            do {
                try await node.run(gracefulShutdownSignals: [.sigterm, .sigint])
            } catch {
                try? await http.shutdown()
                throw error
            }
            try? await http.shutdown()
        }
    }

    /// One node per cache: the cache's lock, held until the node exits. Another node holding it is an error at once;
    /// a command that changes the cache (`add`, `verify`…) is waited for (up to 30 s).
    static func lockCache(_ root: String) async throws -> FileLock {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let lock = try CacheLock.tryAcquire(root: root, command: "serve") { return lock }
            let holder = CacheLock.holder(root: root)
            if holder?.command == "serve" || ContinuousClock.now >= deadline {
                let who = holder.map { $0.command == "serve" ? "a node (pid \($0.pid))" : "'\($0.command)' (pid \($0.pid))" } ?? "another process"
                throw CacheFolderError.busy("\(who) already holds \(root): one node per cache; stop it first, or give this node another --cache-dir")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
