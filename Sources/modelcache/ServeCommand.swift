import ArgumentParser
import AsyncHTTPClient
import Foundation
import ModelCache
import ModelCacheCore

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a node: serve the cache to LAN peers, find peers over mDNS, fetch through them.",
        discussion: "SIGTERM or SIGINT shut the node down gracefully. Fetches on the same cache directory go through it. Every option can also be set in the config file or a MODELCACHE_* variable: see 'modelcache config'.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: ServeOptions

    func run() async throws {
        try await runReportingErrors {
            var config = try global.loadConfig()
            let (settings, engineSettings) = try options.settings(&config)
            let logFormat = try options.logFormat(&config)
            let root = try global.root(&config)
            Logging.bootstrapOnce(verbose: global.verbose, format: logFormat)
            let store = try Store(root: root, logger: Logging.logger("modelcache.store"))
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
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await node.run(gracefulShutdownSignals: [.sigterm, .sigint]) }
                    // Once the listener is bound: its port, not the setting's (`--listen HOST:0` binds any free port).
                    group.addTask {
                        guard let b = await node.serveBanner() else { return }
                        Logging.banner(b.text, format: logFormat, metadata: b.metadata)
                    }
                    try await group.waitForAll()
                }
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
