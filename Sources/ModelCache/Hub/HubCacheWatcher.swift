#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import ModelCacheCore
import ServiceLifecycle

/// `serve --hf-import PATH`: imports a Hub cache at start, and again a few seconds after it changes (inotify on the
/// cache folder and each repo's `blobs/`, `refs/`, `snapshots/` and snapshot folders: what the client writes when it
/// downloads), and every 10 minutes in any case (changes deeper down, or no inotify). A run hashes only new blobs.
struct HubCacheWatcher: Service {
    let node: Node
    let path: String
    let hub: HubService?
    static let settle: Duration = .seconds(3)
    static let rescan: Duration = .seconds(600)

    func run() async throws {
        await cancelWhenGracefulShutdown { await watch() }
    }

    func watch() async {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        let layout = HubCacheLayout(root: HubCacheLayout.expandHome(path, home: home))  // "~/…" in config.toml too
        let importer = HubCacheImporter(layout: layout, upstream: hub?.upstream.base ?? NodeSettings.defaultHFUpstream, visibility: .ask)
        let notify = Inotify()
        var due: ContinuousClock.Instant? = .now
        var lastRun = ContinuousClock.now
        var refused: Set<String> = []  // wrong blobs are reported once, not hashed again at every change
        while !Task.isCancelled {
            if let d = due, ContinuousClock.now >= d {
                due = nil
                notify?.watch(HubCacheWatcher.folders(layout))
                refused = await importOnce(importer, layout: layout, skipping: refused)
                notify?.drain()  // what the import itself changed (modes) is not news
                lastRun = .now
            }
            try? await Task.sleep(for: .seconds(1))
            if notify?.drain() == true { due = .now + HubCacheWatcher.settle }  // wait for the client to finish writing
            if due == nil, ContinuousClock.now - lastRun >= HubCacheWatcher.rescan { due = .now }
        }
    }

    /// The folders whose changes mean new downloads.
    static func folders(_ layout: HubCacheLayout) -> [String] {
        var out = [layout.root]
        for repo in HubCacheScanner.repos(layout) {
            let dir = layout.repoDir(repo)
            out += [dir, dir + "/blobs", dir + "/refs", dir + "/snapshots"]
            out += PosixFile.list(dir + "/snapshots").filter(HubRoute.isCommit).map { dir + "/snapshots/" + $0 }
        }
        return out
    }

    /// One import; returns the refused blob files (to skip while they stay as they are).
    func importOnce(_ importer: HubCacheImporter, layout: HubCacheLayout, skipping: Set<String>) async -> Set<String> {
        guard HubCacheScanner.isDirectory(layout.root) else {
            node.logger.warning("hf-import: no Hugging Face cache there", metadata: ["path": "\(path)"])
            return skipping
        }
        let store = node.store
        let log = node.logger
        do {
            let summary = try await importer.run(store: store, probe: { repo, commit, file in
                await probe(repo, commit, file)
            }, step: { r in
                try await HubCacheWatcher.onThread { try store.importHub(r) }
            }, say: { line in
                if line.hasPrefix("REFUSED") { log.warning("hf-import", metadata: ["note": "\(line)"]) } else { log.info("hf-import", metadata: ["note": "\(line)"]) }
            }, skipping: skipping)
            log.info("hf-import done", metadata: ["path": "\(path)", "result": "\(summary.line)"])
            return summary.refusedFiles
        } catch {
            log.warning("hf-import failed", metadata: ["path": "\(path)", "error": "\(error)"])
            return skipping
        }
    }

    /// An anonymous HEAD at the upstream; unreachable: 200 if this node knows the file as public, else no answer.
    func probe(_ repo: HubRepo, _ commit: String, _ file: String) async -> Int? {
        guard let hub else { return nil }
        switch await hub.upstream.request(.HEAD, repo.resolvePath(commit, path: file), auth: nil) {
        case .answer(let a): return a.status
        case .unreachable: return (try? node.store.hubFile(repo, commit: commit, path: file))??.isPublic == true ? 200 : nil
        }
    }

    /// Blocking store work (hashing) on a thread of its own, off Swift's cooperative pool.
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        let result: Result<T, any Error> = await withCheckedContinuation { c in
            Thread { c.resume(returning: Result { try work() }) }.start()
        }
        return try result.get()
    }
}

/// A non-blocking inotify descriptor watching folders for new and renamed entries.
final class Inotify: @unchecked Sendable {  // used by one task at a time (the watcher's loop)
    let fd: Int32

    init?() {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0 { return nil }
    }

    deinit { close(fd) }

    func watch(_ folders: [String]) {
        let mask = UInt32(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE)
        for f in folders.prefix(8192) { _ = inotify_add_watch(fd, f, mask) }
    }

    /// Reads every pending event; true if there was any.
    @discardableResult
    func drain() -> Bool {
        var any = false
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        for _ in 0..<1000 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            any = true
        }
        return any
    }
}
