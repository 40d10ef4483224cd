import ArgumentParser
import AsyncHTTPClient
import Foundation
import ModelCache
import ModelCacheCore

/// `modelcache hf download`: the counterpart of `hf download`, through the node serving this cache. The revision and
/// the listing come from the node's Hub endpoint (the Hub, else what the node or its peers know); the bytes are one
/// job of the node (LAN peers first); the files land in the Hugging Face cache as `huggingface_hub` lays it out,
/// each blob a hard link to the store's (one copy on disk), so the client finds them offline.
struct HfDownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download a Hugging Face repo (or some of its files) into the Hugging Face cache through the node; prints the snapshot's path last.",
        discussion: "One file name prints that file's path instead, as hf download does. Needs a node on this cache (modelcache serve).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The repo id, owner/name.") var repo: String
    @Argument(help: "Files to download (default: all); 'dir/' means every file under dir.") var files: [String] = []
    @Option(help: "A branch, tag or commit.") var revision = "main"
    @Option(help: "Download only files matching this glob (repeatable; * matches across /).") var include: [String] = []
    @Option(help: "Skip files matching this glob (repeatable).") var exclude: [String] = []
    @Option(help: "model, dataset or space.") var repoType = "model"
    @Option(help: "Put the files in this folder (own copies) instead of the Hugging Face cache.") var localDir: String?
    @Option(help: "The Hugging Face token (default: HF_TOKEN, else the token file HF_HOME/token).") var token: String?
    @Flag(help: "Start the node's job, print its id and return; run the same command again to lay the files out.") var detach = false
    @Flag(name: .shortAndLong, help: "No progress on stderr (errors still go there).") var quiet = false

    struct Chosen {
        var file: HubTreeFile
        var sha256: BlobDigest?
        var isPublic = true
        var url: String
    }

    func run() async throws {
        try await runReportingErrors {
            let repo = try HfSupport.repo(self.repo, type: repoType)
            guard HubCacheLayout.isSafeRevision(revision) else { throw ValidationError("'\(revision)' is not a revision") }
            let selection: HubFileSelection
            do throws(HubFileSelection.Problem) { selection = try HubFileSelection(files: files, include: include, exclude: exclude) } catch { throw ValidationError(error.description) }
            let auth = HfSupport.authorization(token: token)
            let store = try global.openStore()
            try await HfSupport.withHTTP { http in
                let control = ControlClient(socketPath: store.root + "/node.sock", http: http)
                guard await control.isNodeRunning() else {
                    throw NodeError(code: "no-node", message: "no node serves \(store.root): start one with 'modelcache serve'; hf download goes through its Hugging Face endpoint")
                }
                let upstream = try await control.info()["hfUpstream"] ?? ""
                guard !upstream.isEmpty else {
                    throw NodeError(code: "invalid-argument", message: "the node has no Hugging Face endpoint (serve --hf-upstream none): start it with one")
                }

                // The commit and its listing, from the node's endpoint.
                var commit = revision
                if !HubRoute.isCommit(revision) {
                    let a = try await ok(control.hub(.GET, repo.revisionPath(revision), auth: auth, timeout: .seconds(60)), "\(repo.id)@\(revision)")
                    guard let c = HubService.commit(inRevisionInfo: a.body) else {
                        throw NodeError(code: "bad-status", message: "the node's answer for \(repo.id)@\(revision) names no commit")
                    }
                    commit = c
                }
                let listingAnswer = try await ok(control.hub(.GET, repo.treePath(commit, path: "") + "?recursive=true&expand=false", auth: auth, timeout: .seconds(120)),
                                                 "the files of \(repo.id)@\(commit)")
                guard let listing = HubTreeFile.parse(apiListing: listingAnswer.body) else {
                    throw NodeError(code: "bad-status", message: "the node's listing of \(repo.id)@\(commit) is not a JSON list")
                }
                let wanted = Set(selection.apply(listing.map(\.path)))
                if let single = selection.single, wanted.isEmpty {
                    throw NodeError(code: "bad-status", message: "\(repo.id)@\(revision) has no file \(single)")
                }
                var chosen: [Chosen] = []
                // Gating and privacy are per repo: once one file needed the token, the others are asked with it
                // straight away (no anonymous HEAD per file that the Hub would refuse anyway).
                var gated = false
                for f in listing where wanted.contains(f.path) {
                    let c = try await describe(f, repo: repo, commit: commit, upstream: upstream, auth: auth, gated: gated, control: control)
                    gated = gated || !c.isPublic
                    chosen.append(c)
                }

                // Blobs the Hub cache has and the store has not (the client downloaded them, or the node evicted them):
                // imported (checked against their names, linked) instead of downloaded again.
                let layout = HfSupport.layout()
                var wrong: Set<String> = []
                for c in chosen where try stored(c, store) == nil && PosixFile.exists(layout.blobPath(repo, etag: c.file.etag)) {
                    let file = layout.blobPath(repo, etag: c.file.etag)
                    let meta = HubFileMeta(repo: repo, commit: commit, path: c.file.path, size: c.file.size, etag: c.file.etag,
                                           sha256: c.sha256, isPublic: c.isPublic)
                    let blob = HubImportPlan.Blob(name: c.file.etag, size: c.file.size, files: [meta], urls: [c.url])
                    let out = try await control.importHub(HubImportRequest(blob: .init(file: file, blob: blob, isPrivate: !c.isPublic)))
                    if out.method == .refused { wrong.insert(c.file.etag); HfSupport.say("\(c.file.path): the Hub cache's blob is wrong (\(out.problem ?? "")): downloading it") }
                }

                // The bytes: public files as one job of the node; files of gated or private repos with the token.
                let missingPublic = try chosen.filter { try $0.isPublic && stored($0, store) == nil }
                if !missingPublic.isEmpty {
                    let job = try await control.createJob(
                        title: "\(repo.id)@\(commit.prefix(12)) (hf download, \(missingPublic.count) files)",
                        requests: missingPublic.map { Job.Request(url: $0.url, sha256: $0.sha256) },
                        downloadTotal: missingPublic.reduce(0) { $0 + $1.file.size })
                    if detach { print(job.id); return }
                    let display = ProgressDisplay(name: repo.id, quiet: quiet)
                    defer { display.finish() }
                    let done = try await JobFollower.follow(job.id, control: control, display: display, failOffline: true)
                    guard done.state == .success else { throw done.failure }
                } else if detach {
                    HfSupport.say("every file is in the cache already: nothing to detach")
                }
                for c in chosen where try !c.isPublic && stored(c, store) == nil {
                    HfSupport.say("\(c.file.path): gated or private, fetched with your token")
                    _ = try await ok(control.hub(.GET, repo.resolvePath(commit, path: c.file.path), auth: auth, maxBody: 0), c.file.path)
                }

                // The layout.
                var counts: [HubCacheWriter.Placed: Int] = [:]
                for var c in chosen {
                    if c.sha256 == nil, !c.isPublic {  // a private plain file: its sha256 is known to the node now
                        let a = try await control.hub(.HEAD, repo.resolvePath(commit, path: c.file.path), auth: auth, timeout: .seconds(60))
                        c.sha256 = a.first(HubService.sha256Header).flatMap(BlobDigest.init(ifValid:))
                    }
                    guard let blob = try stored(c, store) else {
                        throw NodeError(code: "fetch-error", message: "\(c.file.path) is not in the cache after its download: run the command again")
                    }
                    let placed: HubCacheWriter.Placed
                    if let localDir {
                        placed = try HubCacheWriter.placeLocal(blob.path, dir: absolute(localDir), path: c.file.path, commit: commit, etag: c.file.etag)
                    } else {
                        placed = try HubCacheWriter.placeBlob(blob.path, layout: layout, repo: repo, etag: c.file.etag,
                                                               replace: wrong.contains(c.file.etag))
                        try HubCacheWriter.linkSnapshotFile(layout: layout, repo: repo, commit: commit, path: c.file.path, etag: c.file.etag)
                    }
                    counts[placed, default: 0] += 1
                }
                if localDir == nil { try HubCacheWriter.writeRef(layout: layout, repo: repo, revision: revision, commit: commit) }
                if selection.single == nil {
                    let folder = localDir.map { absolute($0) + "/.cache/huggingface" } ?? layout.repoDir(repo)
                    try HubCacheWriter.writeTree(folder: folder, commit: commit, files: listing)
                }
                HfSupport.say("\(chosen.count) files of \(repo.id)@\(commit.prefix(12)): " + [HubCacheWriter.Placed.linked, .copied, .reflinked, .present]
                    .map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", "))
                let base = localDir.map(absolute) ?? layout.snapshotDir(repo, commit: commit)
                print(selection.single.map { base + "/" + $0 } ?? base)
            }
        }
    }

    /// A file's public state, sha256 and the URL the node caches it under: an anonymous HEAD first (what a public
    /// file answers), the token only when that is refused (a gated or private repo), or at once when an earlier file
    /// of the same repo was (`gated`).
    func describe(_ f: HubTreeFile, repo: HubRepo, commit: String, upstream: String, auth: String?, gated: Bool = false,
                  control: ControlClient) async throws -> Chosen {
        let path = repo.resolvePath(commit, path: f.path)
        var c = Chosen(file: f, sha256: f.lfsSHA256.flatMap(BlobDigest.init(ifValid:)),
                       url: repo.resolveURL(upstream: upstream, revision: commit, path: f.path))
        var a = try await control.hub(.HEAD, path, auth: gated ? auth : nil, timeout: .seconds(60))
        if gated, auth != nil {
            c.isPublic = false
        } else if [401, 403, 404].contains(a.status), auth != nil {
            a = try await control.hub(.HEAD, path, auth: auth, timeout: .seconds(60))
            c.isPublic = false
        }
        _ = try ok(a, f.path)
        c.sha256 = c.sha256 ?? a.first(HubService.sha256Header).flatMap(BlobDigest.init(ifValid:))
        return c
    }

    func stored(_ c: Chosen, _ store: Store) throws -> BlobRecord? {
        if let d = c.sha256, let r = try store.lookup(digest: d) { return r }
        return try store.lookup(url: c.url)
    }

    /// The answer if 2xx, else an error naming what was asked (exit 3 for the Hub's refusals, 4 when nobody knows).
    func ok(_ a: ControlClient.HubAnswer, _ what: String) throws -> ControlClient.HubAnswer {
        guard !(200...299).contains(a.status) else { return a }
        let code = a.status >= 500 ? "fetch-error" : "bad-status"
        throw NodeError(code: code, message: "\(what): the node's Hugging Face endpoint answered \(a.status) \(a.errorText)")
    }

    func absolute(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }
}
