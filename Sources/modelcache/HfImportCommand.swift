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
                var upstream = nodeUpstream.isEmpty ? (try hfUpstream ?? resolver.text(.hfUpstream, flag: String?.none) ?? NodeSettings.defaultHFUpstream ?? "") : nodeUpstream
                if upstream == "none" || upstream.isEmpty { upstream = "https://huggingface.co" }
                while upstream.hasSuffix("/") { upstream.removeLast() }
                var lock: FileLock? = nil
                if !viaNode {
                    lock = try await HfImportCommand.lock(store)
                    store.removeOwnTemporaries()
                }
                let step: (HubImportRequest) async throws -> HubImportOutcome = { r in
                    if viaNode { return try await control.importHub(r) }
                    return try store.importHub(r)
                }
                var counts: [HubImportOutcome.Method: Int] = [:]
                var refused = 0
                for repo in HubCacheScanner.repos(layout) {
                    let scan = HubCacheScanner.scan(layout, repo)
                    for p in scan.problems { HfSupport.say(p) }
                    guard let sample = scan.snapshots.sorted(by: { $0.key < $1.key }).first.flatMap({ c in c.value.keys.sorted().first.map { (c.key, $0) } }) else { continue }
                    let isPublic = try await decidePublic(repo, commit: sample.0, path: sample.1, upstream: upstream,
                                                          control: viaNode && !nodeUpstream.isEmpty ? control : nil, http: http)
                    let plan = HubImportPlan(scan: scan, upstream: upstream, isPublic: isPublic)
                    HfSupport.say("\(repo.kind.rawValue.dropLast())s \(repo.id): \(plan.blobs.count) blobs, \(ProgressText.bytes(plan.byteCount))\(isPublic ? "" : ", private")")
                    for (i, b) in plan.blobs.enumerated() {
                        let name = b.files.first.map(\.path) ?? b.name
                        if try store.knownHubBlob(b) == nil {  // only what must be hashed
                            HfSupport.say("[\(i + 1)/\(plan.blobs.count)] hashing \(name) (\(ProgressText.bytes(b.size)))")
                        }
                        let out = try await step(HubImportRequest(blob: .init(file: layout.blobPath(repo, etag: b.name), blob: b, isPrivate: !isPublic)))
                        counts[out.method, default: 0] += 1
                        if out.method == .refused {
                            refused += 1
                            HfSupport.say("REFUSED \(repo.id) \(b.files.map(\.path).joined(separator: ", ")) (blob \(b.name)): \(out.problem ?? "wrong bytes"); not imported")
                        }
                    }
                    _ = try await step(HubImportRequest(metadata: .init(repo: repo, refs: plan.refs, trees: plan.trees, isPublic: isPublic)))
                }
                withExtendedLifetime(lock) {}
                print([HubImportOutcome.Method.linked, .copied, .known, .refused].map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", "))
                if refused > 0 { throw ExitCode(5) }
            }
        }
    }

    /// Whether an anonymous client may download the repo's files: one file's HEAD without a token, through the
    /// node's endpoint (it asks the Hub, or answers from what it knows) or straight at the Hub. --public/--private win.
    func decidePublic(_ repo: HubRepo, commit: String, path: String, upstream: String, control: ControlClient?, http: HTTPClient) async throws -> Bool {
        if `public` { return true }
        if `private` { return false }
        let resolve = repo.resolvePath(commit, path: path)
        var status: Int? = nil
        if let control {
            status = try? await control.hub(.HEAD, resolve, auth: nil, timeout: .seconds(30)).status
        } else {
            var req = HTTPClientRequest(url: upstream + resolve)
            req.method = .HEAD
            status = try? await http.execute(req, timeout: .seconds(10)).status.code.asInt
        }
        switch status {
        case .some(200...399): return true
        case .some(let s) where (400...499).contains(s):
            HfSupport.say("\(repo.id): the Hub refuses it without a token (\(s)): imported as private")
        default:
            HfSupport.say("\(repo.id): could not ask whether it is public: imported as private (run again online, or pass --public if it is)")
        }
        return false
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

extension UInt {
    var asInt: Int { Int(clamping: self) }
}
