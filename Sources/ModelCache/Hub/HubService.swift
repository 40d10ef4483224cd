import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ModelCacheCore
import NIOCore
import Synchronization

/// The node's Hugging Face endpoint (protocol §13): `HF_ENDPOINT=http://<node>` makes the real huggingface_hub
/// client download through the node. Metadata comes from the upstream (`serve --hf-upstream`) and is kept, so the
/// node (and its peers) can answer with the upstream unreachable; file bytes come from the cache, or through the
/// fetch engine (peers first, then the upstream) and are streamed to the client as their chunks are verified.
public final class HubService: Sendable {
    /// Set by a node asking a peer: answer only from what you hold, public things only, never ask your upstream.
    public static let localOnlyHeader = "X-ModelCache-Hub-Local"
    /// On a resolve answer, the sha256 of the file's bytes when the node knows it (non-LFS files have a git sha1 ETag).
    public static let sha256Header = "X-ModelCache-Sha256"

    let node: Node
    let upstream: HubUpstream
    /// Downloads streamed to clients (shared code with the registry mirror).
    let downloads: VerifiedDownloads
    let logger: Logger

    public init(node: Node, upstream: String, http: HTTPClient, logger: Logger) {
        self.node = node
        self.upstream = HubUpstream(base: upstream, http: http, route: OriginRoute(rule: node.engine.settings.originProxy), logger: logger)
        self.logger = logger
        self.downloads = VerifiedDownloads(node: node, logger: logger)
    }

    var store: Store { node.store }

    typealias Call = ClientCall

    public func respond(_ route: HubRoute, _ request: Request, connection: ServingConnection = .unknown) async throws -> Response {
        let call = Call(request, connection: connection)
        switch route {
        case .resolve(let repo, let revision, let path): return try await resolve(repo, revision, path, call)
        case .revision(let repo, let revision): return try await self.revision(repo, revision, call)
        case .tree(let repo, let revision, let path): return try await self.tree(repo, revision, path, call)
        case .otherAPI: return try await proxy(call)
        }
    }

    // MARK: resolve

    func resolve(_ repo: HubRepo, _ revision: String, _ path: String, _ call: Call) async throws -> Response {
        var meta: HubFileMeta? = nil
        var why = "the upstream was not asked"
        if !call.localOnly {
            if HubRoute.isCommit(revision), let m = try store.hubFile(repo, commit: revision, path: path), m.isPublic {
                meta = m  // a commit never moves: what is known of it is final
            } else {
                switch await upstream.request(.HEAD, repo.resolvePath(revision, path: path), auth: call.auth) {
                case .answer(let a) where a.isSuccess:
                    guard var m = HubFileMeta.from(headers: a.headers, status: a.status, repo: repo, path: path, isPublic: true) else {
                        return try HubService.error(.badGateway, code: nil, "\(upstream.base) answered \(path) without X-Repo-Commit or ETag", head: call.isHead)
                    }
                    if call.auth != nil { m.isPublic = await upstream.isPublic(.HEAD, repo.resolvePath(revision, path: path), repo: repo) }
                    if m.sha256 == nil, let old = try store.hubFile(repo, commit: m.commit, path: path), old.etag == m.etag {
                        m.sha256 = old.sha256
                    }
                    try store.saveHubFile(m)
                    try store.saveHubRef(repo, revision: revision, commit: m.commit, info: nil, isPublic: m.isPublic)
                    meta = m
                case .answer(let a):
                    return HubService.passThrough(a, head: call.isHead)
                case .unreachable(let reason):
                    why = reason
                }
            }
        }
        if meta == nil { meta = try knownFile(repo, revision, path) }
        if meta == nil, !call.localOnly, let m = await askPeers(repo, revision, path) {
            try store.saveHubFile(m)
            try store.saveHubRef(repo, revision: revision, commit: m.commit, info: nil, isPublic: true)
            meta = m
        }
        guard let meta else {
            if call.localOnly { return try HubService.error(.notFound, code: nil, "not known here", head: call.isHead) }
            return try HubService.error(.serviceUnavailable, code: nil,
                                        "\(why), and neither this node nor its peers know \(repo.id)@\(revision)/\(path)", head: call.isHead)
        }
        let url = repo.resolveURL(upstream: upstream.base, revision: meta.commit, path: path)
        var blob = try storedBlob(meta, url: url)
        if let blob, meta.isPublic, blob.isPrivate { try store.markPublic(blob.sha256) }
        var headers = HTTPFields()
        headers[HTTPField.Name("X-Repo-Commit")!] = meta.commit
        headers[.eTag] = "\"\(meta.etag)\""
        headers[HTTPField.Name("X-Linked-Etag")!] = "\"\(meta.etag)\""
        headers[.contentType] = "application/octet-stream"
        if let sha = meta.sha256 ?? blob?.sha256 { headers[HTTPField.Name(HubService.sha256Header)!] = sha.hex }
        let size: Int64
        if let known = meta.size ?? blob?.size {
            size = known
        } else {
            // Only a non-LFS file whose upstream HEAD had no Content-Length gets here: fetch it to learn its size.
            if call.localOnly { return try HubService.error(.notFound, code: nil, "size not known here", head: call.isHead) }
            size = try await startFetch(meta, url: url, auth: call.auth).value().size
            blob = try storedBlob(meta, url: url)
        }
        headers[HTTPField.Name("X-Linked-Size")!] = String(size)
        return try await downloads.answer(
            want(meta, url: url, auth: call.auth), size: size, blob: blob, request: call.request, connection: call.connection, headers: headers,
            notStored: call.localOnly ? { try HubService.error(.notFound, code: nil, "not stored here", head: false) } : nil,
            learned: learned(meta),
            unsatisfiable: { try HubService.error(.rangeNotSatisfiable, code: nil, "\(path) has \(size) bytes", head: false, headers: $0) })
    }

    /// The stored blob for a file, if any.
    func storedBlob(_ meta: HubFileMeta, url: String) throws -> BlobRecord? {
        if let d = meta.sha256, let r = try store.lookup(digest: d) { return r }
        return try store.lookup(url: url)
    }

    /// What this node knows of a public file without asking anyone.
    func knownFile(_ repo: HubRepo, _ revision: String, _ path: String) throws -> HubFileMeta? {
        let commit = HubRoute.isCommit(revision) ? revision : try store.hubRef(repo, revision: revision).flatMap { $0.isPublic ? $0.commit : nil }
        guard let commit, let m = try store.hubFile(repo, commit: commit, path: path), m.isPublic else { return nil }
        return m
    }

    /// Starts (or joins) the node's download of a file (`VerifiedDownloads.start`).
    func startFetch(_ meta: HubFileMeta, url: String, auth: String?) async -> HubFlights.Flight {
        await downloads.start(want(meta, url: url, auth: auth), learned: learned(meta))
    }

    func want(_ meta: HubFileMeta, url: String, auth: String?) -> VerifiedDownloads.Want {
        VerifiedDownloads.Want(url: url, sha256: meta.sha256, isPublic: meta.isPublic, auth: auth,
                               title: "\(meta.repo.id): \(meta.path) (Hugging Face)", useOrigin: !upstream.isKnownDown)
    }

    /// A non-LFS file's sha256, kept once its download tells it.
    func learned(_ meta: HubFileMeta) -> @Sendable (FetchResult) throws -> Void {
        { [store] result in
            guard meta.sha256 == nil else { return }
            var known = meta
            known.sha256 = result.sha256
            try store.saveHubFile(known)
        }
    }
}
