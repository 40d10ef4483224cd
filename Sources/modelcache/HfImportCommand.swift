import ArgumentParser
import AsyncHTTPClient
import Foundation
import ModelCache
import ModelCacheCore

/// `modelcache hf import`: adopts a Hugging Face Hub cache. Every blob a snapshot points to is hashed, checked
/// against its name and linked (not copied) into the store under the Hub URLs its snapshots stand for; refs and
/// listings go into the node's Hub metadata, so the node and its peers serve those commits at once, offline too.
struct HfImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a Hugging Face Hub cache (default: yours) into this cache, hard-linked, so LAN peers can fetch it.",
        discussion: """
            A blob whose bytes do not match its name is reported and skipped (exit 5). The Hub cache cannot tell a gated \
            or private repo from a public one, so each repo is asked about anonymously (through the node's Hugging Face \
            endpoint, else the Hub): one that refuses, or cannot be asked, is imported as private (never served to \
            peers). --public or --private decide instead. A second run hashes only what is new.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The Hub cache folder (default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub).") var path: String?
    @Flag(help: "Import every repo as public (served to LAN peers) without asking the Hub.") var `public` = false
    @Flag(help: "Import every repo as private (never served to peers or to clients without the Hub's consent).") var `private` = false
    @Option(help: .hidden) var hfUpstream: String?

    func validate() throws {
        if `public` && `private` { throw ValidationError("--public and --private exclude each other") }
    }

    func run() async throws {
        try await runReportingErrors {
            let layout = HfSupport.layout(path)
            guard HubCacheScanner.isDirectory(layout.root) else {
                throw ModelCacheError.io(path: layout.root, detail: "no Hugging Face cache there: give its folder (hf import PATH)")
            }
            var resolver = try global.loadConfig()
            let store = try global.openStore()
            try await HfSupport.withHTTP { http in
                let control = ControlClient(socketPath: store.root + "/node.sock", http: http)
                let viaNode = await control.isNodeRunning()
                let nodeUpstream = viaNode ? try await control.info()["hfUpstream"] ?? "" : ""
                var upstream = nodeUpstream.isEmpty ? (try hfUpstream ?? resolver.text(.hfUpstream, flag: String?.none) ?? NodeSettings.defaultHFUpstream) : nodeUpstream
                if upstream == "none" || upstream.isEmpty { upstream = "https://huggingface.co" }
                var lock: FileLock? = nil
                if !viaNode {
                    lock = try await HfImportCommand.lock(store)
                    store.removeOwnTemporaries()
                }
                let importer = HubCacheImporter(layout: layout, upstream: upstream,
                                                visibility: `public` ? .allPublic : `private` ? .allPrivate : .ask)
                let summary = try await importer.run(store: store, probe: { repo, commit, file in
                    let path = repo.resolvePath(commit, path: file)
                    if viaNode && !nodeUpstream.isEmpty { return try? await control.hub(.HEAD, path, auth: nil, timeout: .seconds(30)).status }
                    var req = HTTPClientRequest(url: upstream + path)
                    req.method = .HEAD
                    return try? await Int(http.execute(req, timeout: .seconds(10)).status.code)
                }, step: { r in
                    if viaNode { return try await control.importHub(r) }
                    return try store.importHub(r)
                }, say: HfSupport.say)
                withExtendedLifetime(lock) {}
                print(summary.line)
                if summary.refused > 0 { throw ExitCode(5) }
            }
        }
    }

    /// The cache's lock (no node runs on it), waiting up to 10 minutes for another command that holds it.
    static func lock(_ store: Store) async throws -> FileLock {
        for _ in 0..<6000 {
            if let l = try CacheLock.tryAcquire(root: store.root, command: "hf import") { return l }
            try await Task.sleep(for: .milliseconds(100))
        }
        let who = CacheLock.holder(root: store.root).map { "'\($0.command)' (pid \($0.pid))" } ?? "another process"
        throw CacheFolderError.busy("\(who) holds the lock of \(store.root) and no node answers on its control socket: wait for it to end, or stop it")
    }
}
