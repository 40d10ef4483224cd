import Foundation
import ModelCacheCore

/// One run of a Hub cache import (`modelcache hf import`, `serve --hf-import`): every repo of the cache scanned,
/// asked whether it is public, planned, and imported blob by blob, then its refs and listings (protocol §15).
/// Who does each step (the node, or the CLI under the cache's lock) and how a repo is asked about are the caller's.
public struct HubCacheImporter: Sendable {
    public enum Visibility: Sendable { case ask, allPublic, allPrivate }

    public struct Summary: Sendable {
        public var counts: [HubImportOutcome.Method: Int] = [:]
        /// The refused blob files as they were (`HubCacheImporter.fileKey`): a later run skips them while unchanged.
        public var refusedFiles: Set<String> = []
        public var refused: Int { counts[.refused] ?? 0 }
        public var line: String {
            [HubImportOutcome.Method.linked, .copied, .known, .refused].map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
        }
    }

    public let layout: HubCacheLayout
    /// The Hub the URLs name (the node's `hf-upstream`).
    public let upstream: String
    public let visibility: Visibility

    public init(layout: HubCacheLayout, upstream: String, visibility: Visibility) {
        self.layout = layout
        var u = upstream
        while u.hasSuffix("/") { u.removeLast() }
        self.upstream = u
        self.visibility = visibility
    }

    /// - Parameters:
    ///   - store: to tell which blobs need hashing (for the progress lines).
    ///   - probe: the status of an anonymous `HEAD` of a file (repo, commit, path) (nil: no answer).
    ///   - step: does one import step.
    ///   - say: progress and problems, one line each.
    ///   - skipping: blob files refused by an earlier run (`Summary.refusedFiles`), not hashed again while unchanged.
    public func run(store: Store, probe: (HubRepo, String, String) async -> Int?, step: (HubImportRequest) async throws -> HubImportOutcome,
                    say: (String) -> Void, skipping: Set<String> = []) async throws -> Summary {
        var summary = Summary()
        for repo in HubCacheScanner.repos(layout) {
            try Task.checkCancellation()
            let scan = HubCacheScanner.scan(layout, repo)
            for p in scan.problems { say(p) }
            guard let (commit, files) = scan.snapshots.min(by: { $0.key < $1.key }), let path = files.keys.min() else { continue }
            let isPublic = await decidePublic(repo, probe: await probe(repo, commit, path), say: say)
            let plan = HubImportPlan(scan: scan, upstream: upstream, isPublic: isPublic)
            say("\(repo.kind.rawValue) \(repo.id): \(plan.blobs.count) blobs, \(ProgressText.bytes(plan.byteCount))\(isPublic ? "" : ", private")")
            for (i, b) in plan.blobs.enumerated() {
                try Task.checkCancellation()
                let file = layout.blobPath(repo, etag: b.name)
                if let key = HubCacheImporter.fileKey(file), skipping.contains(key) {
                    summary.counts[.refused, default: 0] += 1
                    summary.refusedFiles.insert(key)
                    continue
                }
                if try store.knownHubBlob(b) == nil {  // only what must be hashed
                    say("[\(i + 1)/\(plan.blobs.count)] hashing \(b.files.first?.path ?? b.name) (\(ProgressText.bytes(b.size)))")
                }
                let before = HubCacheImporter.fileKey(file)
                let out = try await step(HubImportRequest(blob: .init(file: file, blob: b, isPrivate: !isPublic)))
                summary.counts[out.method, default: 0] += 1
                if out.method == .refused {
                    if let before { summary.refusedFiles.insert(before) }
                    say("REFUSED \(repo.id) \(b.files.map(\.path).joined(separator: ", ")) (blob \(b.name)): \(out.problem ?? "wrong bytes"); not imported")
                }
            }
            _ = try await step(HubImportRequest(metadata: .init(repo: repo, refs: plan.refs, trees: plan.trees, isPublic: isPublic)))
        }
        return summary
    }

    /// A file as it is now (path, size, mtime, inode): equal keys mean it was not changed in between.
    static func fileKey(_ path: String) -> String? {
        Store.currentStat(path).map { "\(path)|\($0.size)|\($0.mtimeNanos)|\($0.inode)" }
    }

    /// Public when an anonymous client may download one of its files; a refusal or no answer means private.
    func decidePublic(_ repo: HubRepo, probe status: Int?, say: (String) -> Void) async -> Bool {
        switch visibility {
        case .allPublic: return true
        case .allPrivate: return false
        case .ask: break
        }
        switch status {
        case .some(200...399): return true
        case .some(let s): say("\(repo.id): the Hub refuses it without a token (\(s)): imported as private")
        case .none: say("\(repo.id): could not ask whether it is public: imported as private (run again online, or pass --public if it is)")
        }
        return false
    }
}
