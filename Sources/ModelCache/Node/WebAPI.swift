import Foundation
import HTTPTypes
import Hummingbird
import ModelCacheCore
import NIOCore

/// The browser side of a node on its listen address: the status page, `modelcache.js`, and `/v1/web/…`, the
/// control API for web apps (protocol/PROTOCOL.md §12). Every route sits behind a `BrowserGuard`; the job,
/// event and pin logic is the control API's (`ControlAPI`), not a copy.
struct WebAPI: Sendable {
    let node: Node
    let control: ControlAPI
    /// The access rules, known once the listener is bound (the port is part of the accepted `Host`s).
    let access: @Sendable () -> BrowserAccess?
    /// Which local user opened a loopback connection (`SocketOwner.uid`; tests without sockets give their own).
    let clientUser: @Sendable (_ client: SocketAddress, _ node: SocketAddress) -> UInt32?
    /// Concurrent byte streams to browsers (separate from the peers' upload slots and upload rate).
    let reads = UploadLimiter(limit: 64)

    init(node: Node, access: @escaping @Sendable () -> BrowserAccess?,
         clientUser: @escaping @Sendable (_ client: SocketAddress, _ node: SocketAddress) -> UInt32? = SocketOwner.uid) {
        self.node = node
        self.control = ControlAPI(node: node)
        self.access = access
        self.clientUser = clientUser
    }

    /// Every path of the API, for its CORS preflight route.
    static let apiPaths: [RouterPath] = [
        "/v1/web/info", "/v1/web/jobs", "/v1/web/jobs/:id", "/v1/web/jobs/:id/abort", "/v1/web/jobs/:id/events",
        "/v1/web/events", "/v1/web/blobs", "/v1/web/blobs/:digest", "/v1/web/blobs/:digest/bytes", "/v1/web/bytes",
        "/v1/web/pin", "/v1/web/peers", "/v1/web/summary",
    ]

    func addRoutes<Context: ConnectionRequestContext>(to router: Router<Context>) {
        let page = router.group().add(middleware: guardFor(.statusPage, Context.self))
        page.get("/") { _, _ in try await self.statusPage() }
        let assets = router.group().add(middleware: guardFor(.asset, Context.self))
        for asset in WebAssets.all {
            assets.get(RouterPath(stringLiteral: asset.path)) { _, _ in WebAssets.response(asset) }
        }
        let api = router.group().add(middleware: guardFor(.api, Context.self))
        for path in WebAPI.apiPaths { api.on(path, method: .options) { _, _ in Response(status: .noContent) } }
        api.get("/v1/web/info") { _, _ in
            try PeerAPI.json(["id": self.node.nodeID, "name": self.node.settings.name, "version": ModelCacheVersion.string,
                              "port": String(await self.node.listeningPort())])
        }
        api.post("/v1/web/jobs") { req, _ in try await self.control.create(try await req.body.collect(upTo: 1 << 20)) }
        api.get("/v1/web/jobs") { _, _ in try PeerAPI.json(await self.node.jobs.list()) }
        api.get("/v1/web/jobs/:id") { _, ctx in try await self.control.job(ctx.parameters.get("id") ?? "") }
        api.post("/v1/web/jobs/:id/abort") { _, ctx in try await self.control.abort(ctx.parameters.get("id") ?? "") }
        api.get("/v1/web/jobs/:id/events") { _, ctx in try await self.control.events(ctx.parameters.get("id")) }
        api.get("/v1/web/events") { _, _ in try await self.control.events(nil) }
        api.post("/v1/web/pin") { req, _ in try self.pin(try await req.body.collect(upTo: 1 << 16)) }
        api.get("/v1/web/peers") { _, _ in try PeerAPI.json(await self.node.peerStatus()) }
        api.get("/v1/web/summary") { _, _ in try WebAPI.json(try self.summary()) }
        api.get("/v1/web/blobs") { _, _ in try WebAPI.json(try self.node.store.list().map(WebBlob.init)) }
        api.delete("/v1/web/blobs/:digest") { _, ctx in try self.delete(ctx.parameters.get("digest")) }
        api.get("/v1/web/blobs/:digest/bytes") { req, ctx in
            try self.bytes(digest: ctx.parameters.get("digest"), req, head: false, connection: ctx.servingConnection)
        }
        api.head("/v1/web/blobs/:digest/bytes") { req, ctx in try self.bytes(digest: ctx.parameters.get("digest"), req, head: true) }
        api.get("/v1/web/bytes") { req, ctx in
            try self.bytes(url: req.uri.queryParameters.get("url"), req, head: false, connection: ctx.servingConnection)
        }
        api.head("/v1/web/bytes") { req, _ in try self.bytes(url: req.uri.queryParameters.get("url"), req, head: true) }
    }

    private func guardFor<Context: ConnectionRequestContext>(_ kind: BrowserAccess.Kind, _: Context.Type) -> BrowserGuard<Context> {
        BrowserGuard(access: access, kind: kind, clientUser: clientUser, logger: node.logger)
    }

    /// The status page, with this node's token in a `<meta>` tag (the page is served only to itself, never
    /// cross-origin, and may not be framed).
    func statusPage() async throws -> Response {
        let html = String(decoding: PackageResources.index_html, as: UTF8.self)
            .replacingOccurrences(of: "__MODELCACHE_TOKEN__", with: node.webToken)
            .replacingOccurrences(of: "__MODELCACHE_SNAPSHOT__", with: try await snapshotJSON())
        var h = HTTPFields()
        h[.contentType] = "text/html; charset=utf-8"
        h[.cacheControl] = "no-store"
        h[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        h[HTTPField.Name("X-Frame-Options")!] = "DENY"
        h[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        h[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func pin(_ body: ByteBuffer) throws -> Response {
        guard let p = try? JSONDecoder().decode(ControlAPI.PinBody.self, from: Data(buffer: body)) else {
            return try PeerAPI.errorResponse(.badRequest, "bad-request", "body must be JSON {\"what\": sha256 or URL, \"pinned\": true}")
        }
        do { return try WebAPI.json(WebBlob(try node.store.setPinned(p.what, p.pinned))) } catch let e as ModelCacheError {
            return try PeerAPI.errorResponse(.notFound, e.code, e.description)
        }
    }

    func delete(_ raw: String?) throws -> Response {
        guard let raw, let d = BlobDigest(ifValid: raw) else {
            return try PeerAPI.errorResponse(.badRequest, "malformed-digest", "a blob is named by 64 hex digits")
        }
        do {
            let record = try node.store.remove(d.hex)
            node.catalogueChanged()
            return try WebAPI.json(WebBlob(record))
        } catch let e as ModelCacheError {
            return try PeerAPI.errorResponse(.notFound, e.code, e.description)
        }
    }

    func bytes(digest raw: String?, _ req: Request, head: Bool, connection: ServingConnection = .unknown) throws -> Response {
        guard let raw, let d = BlobDigest(ifValid: raw) else {
            return try PeerAPI.errorResponse(.badRequest, "malformed-digest", "a blob is named by 64 hex digits")
        }
        guard let record = try node.store.lookup(digest: d) else {
            return try PeerAPI.errorResponse(.notFound, "not-found", "blob \(d.hex) is not in this node's cache")
        }
        return try bytes(record, range: req.headers[.range], head: head, connection: connection)
    }

    func bytes(url: String?, _ req: Request, head: Bool, connection: ServingConnection = .unknown) throws -> Response {
        guard let url, !url.isEmpty else {
            return try PeerAPI.errorResponse(.badRequest, "bad-request", "give the URL: /v1/web/bytes?url=<the request's URL>")
        }
        guard let record = try node.store.lookup(url: url) else {
            return try PeerAPI.errorResponse(.notFound, "not-found", "\(url) is not in this node's cache (yet): fetch it first")
        }
        return try bytes(record, range: req.headers[.range], head: head, connection: connection)
    }

    /// A cached blob's bytes, with `Range` (one range; `206` + `Content-Range`, `416` when unsatisfiable).
    func bytes(_ record: BlobRecord, range rangeHeader: String?, head: Bool, connection: ServingConnection = .unknown) throws -> Response {
        var noCache = HTTPFields()
        noCache[.cacheControl] = "no-cache"
        return try RangedAnswer.blob(record.sha256, size: record.size, rangeHeader: rangeHeader, head: head, extra: noCache,
                                     answering: { try? node.store.touch(record.sha256) }) { status, headers, range in
            guard reads.tryAcquire() else {
                return try PeerAPI.busyResponse("this node streams \(reads.limit) files to browsers at once; retry shortly")
            }
            return Response(status: status, headers: headers, body: PeerAPI.fileBody(record.path, range, connection: connection, uploads: reads, limiter: nil))
        }
    }

    /// A blob as the browser API lists it: no local path; dates in ISO 8601.
    struct WebBlob: Codable {
        var sha256: String
        var size: Int64
        var urls: [String]
        var createdAt: Date
        var lastUsedAt: Date
        var pinned: Bool

        init(_ r: BlobRecord) {
            sha256 = r.sha256.hex
            size = r.size
            urls = r.urls
            createdAt = r.createdAt
            lastUsedAt = r.lastUsedAt
            pinned = r.pinned
        }
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    static func json(_ value: some Encodable) throws -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
