import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ModelCacheCore
import NIOCore
import Synchronization

/// The node's registry mirror (protocol §16): the read side of the OCI distribution API under `/v2/` for the
/// upstream registries of `serve --registry-mirror NAME=URL`. Manifests come from the upstream (kept: by digest for
/// good, a tag's digest for `tagTTL`, and served when the upstream is unreachable with `X-ModelCache-Stale-Tag`); blobs
/// are cache blobs whose digest the request names, fetched and streamed by the same code as the Hub endpoint's files
/// (`VerifiedDownloads`: LAN peers first, the upstream for the rest, the whole sha256 checked before the last byte).
public final class RegistryService: Sendable {
    /// On a manifest served from a tag the upstream could not confirm: seconds since it last did.
    public static let staleTagHeader = "X-ModelCache-Stale-Tag"

    let node: Node
    let mirrors: RegistryMirrors
    let upstreams: [String: RegistryUpstream]
    let downloads: VerifiedDownloads
    let http: HTTPClient
    let logger: Logger
    /// How long a tag's digest is used without asking the upstream again.
    let tagTTL: Duration
    /// What manifests served through this node said of their blobs (size, the pull's title, public or not), so a
    /// blob request needs no upstream HEAD (in memory, bounded).
    let blobHints = Mutex<[BlobDigest: BlobHint]>([:])

    typealias Call = ClientCall
    var store: Store { node.store }

    struct BlobHint: Sendable {
        var size: Int64
        var title: String
        var isPublic: Bool
    }

    public init(node: Node, mirrors: RegistryMirrors, http: HTTPClient, tagTTL: Duration = .seconds(30), logger: Logger) {
        self.node = node
        self.mirrors = mirrors
        self.http = http
        self.logger = logger
        self.tagTTL = tagTTL
        let route = OriginRoute(rule: node.engine.settings.originProxy)
        var ups: [String: RegistryUpstream] = [:]
        for m in mirrors.mirrors {
            let u = RegistryUpstream(mirror: m, http: http, route: route, logger: logger)
            ups[m.name] = u
            node.engine.credentials.add(base: m.base + "/v2/") { await u.credentials(for: $0) }
        }
        self.upstreams = ups
        self.downloads = VerifiedDownloads(node: node, logger: logger)
    }

    public func respond(_ route: RegistryRoute, _ request: Request, connection: ServingConnection = .unknown) async throws -> Response {
        let call = Call(request, connection: connection)
        let ns = RegistryRoute.namespace(query: request.uri.query)
        switch route {
        case .ping:
            // Clients such as skopeo, podman and Docker send credentials only when `/v2/` asks for them: a default
            // upstream that wants a password from everyone has its challenge passed on.
            if call.auth == nil, let first = mirrors.mirrors.first, let basic = await upstreams[first.name]?.basicChallenge(),
               let name = HTTPField.Name("WWW-Authenticate") {
                return try RegistryService.error(.unauthorized, "UNAUTHORIZED", "authentication required", head: call.isHead,
                                                 headers: [name: basic])
            }
            return RegistryService.json([UInt8]("{}".utf8), head: call.isHead)
        case .unsupported:
            return try RegistryService.error(.notFound, "UNSUPPORTED", "a mirror serves manifests and blobs only", head: call.isHead)
        case .invalid(let code, let message):
            return try RegistryService.error(.badRequest, code, message, head: call.isHead)
        case .manifest(let name, let reference):
            guard let (up, repo) = select(name, ns) else { return try noMirror(name, ns, call) }
            return try await manifest(up, repo, reference, call)
        case .blob(let name, let digest):
            guard let (up, repo) = select(name, ns) else { return try noMirror(name, ns, call) }
            return try await blob(up, repo, digest, call)
        }
    }

    private func select(_ name: String, _ ns: String?) -> (RegistryUpstream, String)? {
        guard case .mirror(let m, let repo) = mirrors.select(name: name, ns: ns), RegistryName.isValid(name: repo),
              let up = upstreams[m.name] else { return nil }
        return (up, repo)
    }

    private func noMirror(_ name: String, _ ns: String?, _ call: Call) throws -> Response {
        let what = ns.map { "registry \($0)" } ?? name
        return try RegistryService.error(.notFound, "NAME_UNKNOWN", "this node mirrors no \(what) (serve --registry-mirror NAME=URL)", head: call.isHead)
    }

    // MARK: manifests

    func manifest(_ up: RegistryUpstream, _ repo: String, _ reference: RegistryReference, _ call: Call) async throws -> Response {
        let path = "/v2/\(repo)/manifests/\(reference)"
        let accept = call.request.headers[values: .accept].joined(separator: ", ")
        let acceptHeaders = [("Accept", accept.isEmpty ? OCIManifest.knownTypes.joined(separator: ", ") : accept)]
        var tag: Store.RegistryTag? = nil
        if case .tag(let t) = reference {
            tag = try store.registryTag(upstream: up.base, repo: repo, tag: t)
            if let known = tag, known.isPublic,
               call.localOnly || Date().timeIntervalSince(known.updatedAt) < Double(tagTTL.components.seconds),
               RegistryService.accepts(accept, known.mediaType),
               let m = try store.registryManifest(upstream: up.base, repo: repo, digest: known.digest), m.isPublic {
                return serve(m, up, repo, title: t, call: call, staleFor: nil)
            }
        } else if case .digest(let d) = reference, let m = try store.registryManifest(upstream: up.base, repo: repo, digest: d), m.isPublic {
            return serve(m, up, repo, title: nil, call: call, staleFor: nil)
        }
        if call.localOnly { return try RegistryService.error(.notFound, "MANIFEST_UNKNOWN", "not known here", head: call.isHead) }
        var why = "the upstream was not asked"
        switch await up.request(.GET, path, repo: repo, clientAuth: call.auth, headers: acceptHeaders) {
        case .answer(let a) where (200...299).contains(a.status):
            let digest = BlobDigest.of(a.body)
            if case .digest(let d) = reference, d != digest {
                return try RegistryService.error(.badGateway, "MANIFEST_INVALID", "\(up.base) answered \(path) with a manifest of another digest (sha256:\(digest.hex))", head: call.isHead)
            }
            if let claimed = a.first("Docker-Content-Digest"), let c = RegistryName.digest(claimed), c != digest {
                return try RegistryService.error(.badGateway, "MANIFEST_INVALID", "\(up.base) answered \(path) with a body that does not match its Docker-Content-Digest", head: call.isHead)
            }
            let mediaType = a.first("Content-Type") ?? OCIManifest.parse(a.body)?.mediaType ?? OCIManifest.knownTypes[3]
            let isPublic = call.auth == nil ? true : await up.isPublic(.HEAD, path, repo: repo, headers: acceptHeaders)
            let m = Store.RegistryManifest(digest: digest, mediaType: mediaType, body: a.body, isPublic: isPublic)
            try store.saveRegistryManifest(upstream: up.base, repo: repo, m)
            if case .tag(let t) = reference {
                try store.saveRegistryTag(upstream: up.base, repo: repo, tag: t,
                                          .init(digest: digest, mediaType: mediaType, isPublic: isPublic, updatedAt: Date()))
            }
            return serve(m, up, repo, title: tagName(reference), call: call, staleFor: nil)
        case .answer(let a):
            return RegistryService.passThrough(a, head: call.isHead)
        case .unreachable(let reason):
            why = reason
        }
        // The upstream is unreachable: what this node knows (a tag as last confirmed), else what its peers agree on.
        if case .digest(let d) = reference, let m = try store.registryManifest(upstream: up.base, repo: repo, digest: d), m.isPublic {
            return serve(m, up, repo, title: nil, call: call, staleFor: nil)
        }
        if let known = tag, known.isPublic, let m = try store.registryManifest(upstream: up.base, repo: repo, digest: known.digest) {
            let age = max(0, Int(Date().timeIntervalSince(known.updatedAt)))
            logger.warning("registry upstream unreachable; serving the tag as last confirmed",
                           metadata: ["registry": "\(up.mirror.name)", "repo": "\(repo)", "tag": "\(reference)", "age.seconds": "\(age)", "error": "\(why)"])
            return serve(m, up, repo, title: tagName(reference), call: call, staleFor: age)
        }
        if let m = await askPeers(up, repo, reference, acceptHeaders) {
            try store.saveRegistryManifest(upstream: up.base, repo: repo, m)
            if case .tag(let t) = reference {  // confirmed by peers only: asked again at the next request
                try store.saveRegistryTag(upstream: up.base, repo: repo, tag: t,
                                          .init(digest: m.digest, mediaType: m.mediaType, isPublic: true, updatedAt: .distantPast))
            }
            return serve(m, up, repo, title: tagName(reference), call: call, staleFor: tagName(reference) == nil ? nil : -1)
        }
        return try RegistryService.error(.serviceUnavailable, "UNAVAILABLE",
                                         "\(why), and neither this node nor its peers know \(repo):\(reference)", head: call.isHead)
    }

    private func tagName(_ r: RegistryReference) -> String? {
        if case .tag(let t) = r { return t }
        return nil
    }

    /// Answers with a manifest, and remembers what it says of its blobs for their requests.
    func serve(_ m: Store.RegistryManifest, _ up: RegistryUpstream, _ repo: String, title tag: String?, call: Call, staleFor: Int?) -> Response {
        if let parsed = OCIManifest.parse(m.body) {
            let title = "\(up.mirror.name)/\(repo):\(tag ?? "sha256:" + m.digest.short)"
            blobHints.withLock { hints in
                if hints.count > 65_536 { hints.removeAll() }
                for b in parsed.blobs {
                    let old = hints[b.digest]
                    hints[b.digest] = BlobHint(size: b.size, title: tag == nil ? old?.title ?? title : title,
                                               isPublic: m.isPublic || (old?.isPublic ?? false))
                }
            }
        }
        var h = HTTPFields()
        h[.contentType] = m.mediaType
        h[RegistryHeader.contentDigest] = "sha256:" + m.digest.hex
        h[.eTag] = "\"sha256:\(m.digest.hex)\""
        h[RegistryHeader.apiVersion] = "registry/2.0"
        if let staleFor { h[RegistryHeader.staleTag] = staleFor < 0 ? "peers" : String(staleFor) }
        h[.contentLength] = String(m.body.count)
        if call.isHead { return Response(status: .ok, headers: h) }
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: m.body)))
    }

    /// Peers' answers (local-only) for a manifest: each checked against the digest it claims; the most common wins.
    func askPeers(_ up: RegistryUpstream, _ repo: String, _ reference: RegistryReference,
                  _ accept: [(String, String)]) async -> Store.RegistryManifest? {
        let path = "/v2/\(repo)/manifests/\(reference)?ns=" + (up.mirror.name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: ".-"))) ?? up.mirror.name)
        let answers = await node.askPeerEndpoints(path, method: .GET, http: http, logger: logger) { status, headers, body -> Store.RegistryManifest? in
            let digest = BlobDigest.of(body)
            guard (200...299).contains(status), OCIManifest.parse(body) != nil else { return nil }
            if case .digest(let d) = reference, d != digest { return nil }
            let type = headers.first { $0.0.lowercased() == "content-type" }?.1 ?? OCIManifest.knownTypes[3]
            return Store.RegistryManifest(digest: digest, mediaType: type, body: body, isPublic: true)
        }
        return HubService.majority(answers)
    }

    /// Whether a stored manifest of `type` may answer a client that sent `accept` (no header: anything).
    static func accepts(_ accept: String, _ type: String) -> Bool {
        guard !accept.isEmpty else { return true }
        let types = accept.split(separator: ",").map { $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
        return types.contains(type) || types.contains("*/*")
    }
}
