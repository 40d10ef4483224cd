import _NIOFileSystem
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ModelCacheCore
import NIOCore

/// The peer HTTP API (protocol/PROTOCOL.md §6): node info, catalogue, manifests, blob bytes with Range.
/// Only files named by a validated digest under `blobs/sha256/` are ever opened: no path from a request reaches
/// the file system.
public struct PeerAPI: Sendable {
    public let store: Store
    public let nodeID: String
    public let name: String
    public let uploads: UploadLimiter
    public let active: ActiveDownloads
    /// Shared limit on upload bytes (`serve --max-upload-rate`), if any.
    public let uploadLimiter: RateLimiter?
    /// Told of every blob byte sent to a peer, with the requesting host when known (the node's metrics).
    let served: @Sendable (Int, String?) -> Void
    /// The cluster key (protocol §14): the catalogue's answer is signed with it, over the request's nonce (which
    /// `ClusterGuard` checked before the route ran).
    public let clusterKey: ClusterKey?
    let logger: Logger
    let catalogueCache = CatalogueCache()
    /// The records of the blobs being sent, so that a transfer's Range requests do not each read the index.
    let records = BlobRecordCache()

    public init(store: Store, nodeID: String, name: String, uploads: UploadLimiter, active: ActiveDownloads = .init(),
                uploadLimiter: RateLimiter? = nil, served: @escaping @Sendable (Int, String?) -> Void = { _, _ in },
                clusterKey: ClusterKey? = nil, logger: Logger) {
        self.active = active
        self.served = served
        self.clusterKey = clusterKey
        self.uploadLimiter = uploadLimiter
        self.store = store
        self.nodeID = nodeID
        self.name = name
        self.uploads = uploads
        self.logger = logger
    }

    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/v1/info") { _, _ in try self.info() }
        router.get("/v1/catalogue") { req, _ in try self.catalogue(req) }
        router.get("/v1/blobs/:digest/manifest") { _, ctx in try self.manifest(ctx.parameters.get("digest")) }
        router.get("/v1/blobs/:digest/availability") { req, ctx in
            try await self.availability(ctx.parameters.get("digest"), after: req.uri.queryParameters.get("after").flatMap { Int($0) })
        }
        router.get("/v1/blobs/:digest") { req, ctx in
            try self.blob(ctx.parameters.get("digest"), range: req.headers[.range], head: false,
                          remote: (ctx as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress, connection: ctx.servingConnection)
        }
        router.head("/v1/blobs/:digest") { req, ctx in
            try self.blob(ctx.parameters.get("digest"), range: req.headers[.range], head: true)
        }
    }

    public func currentCatalogue() throws -> Catalogue {
        try catalogueCache.catalogue(store: store, node: nodeID, active: active.catalogueEntries())
    }

    /// What this node holds of a blob (protocol §11). With `after=V`, waits (at most 1 s) for a version newer than V.
    func availability(_ raw: String?, after: Int?) async throws -> Response {
        let d = try digest(raw)
        if let after {
            // Sleeps on the download's changes (no polling); the 1 s bound is the protocol's long-poll limit.
            let deadline = ContinuousClock.now + .seconds(1)
            while true {
                let seen = active.changes.generation
                guard active.version == after, active.availability(d) != nil, ContinuousClock.now < deadline else { break }
                try Task.checkCancellation()
                await active.changes.wait(since: seen, atMost: deadline - ContinuousClock.now)
            }
        }
        if let a = active.availability(d) { return try PeerAPI.json(a) }
        if let r = try store.lookup(digest: d), !r.isPrivate {
            let layout = try ChunkLayout(size: r.size, chunkSize: r.chunkSize)
            return try PeerAPI.json(ActiveDownloads.Availability(
                version: active.version, size: r.size, chunkSize: r.chunkSize, have: ChunkSet.full(layout.count).hex,
                claims: ChunkSet(capacity: layout.count).hex, complete: true, node: nodeID))
        }
        throw PeerAPI.error(.notFound, "not-found", "blob \(d.hex) is neither stored nor downloading here")
    }

    func info() throws -> Response {
        let cat = try currentCatalogue()
        let body: [String: String] = ["id": nodeID, "name": name, "protocol": "1", "catalogueVersion": String(cat.version),
                                      "chunkSize": String(ChunkLayout.defaultChunkSize)]
        return try PeerAPI.json(body)
    }

    func catalogue(_ req: Request) throws -> Response {
        let cat = try currentCatalogue()
        let etag = "\"\(cat.version)\""
        var headers = HTTPFields()
        headers[.eTag] = etag
        headers[.cacheControl] = "no-cache"
        if let inm = req.headers[.ifNoneMatch], inm.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag }) {
            return Response(status: .notModified, headers: headers)
        }
        var bytes = Array(try PeerAPI.encoder.encode(cat))
        headers[.contentType] = "application/json"
        headers[.vary] = "Accept-Encoding"
        if (req.headers[.acceptEncoding] ?? "").lowercased().contains("gzip") {
            bytes = Gzip.compress(bytes)
            headers[.contentEncoding] = "gzip"
        }
        if let clusterKey, let nonce = req.headers.value(named: ClusterKey.nonceHeader),
           let name = HTTPField.Name(ClusterKey.answerHeader) {
            headers[name] = clusterKey.signAnswer(nonce: nonce, body: bytes)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    // Errors are thrown as the concrete `APIError`: Swift 6.3.1 crashed (signal 11 in IRGen, -O only) on functions
    // throwing an opaque `some Error`.
    func digest(_ raw: String?) throws -> BlobDigest {
        guard let raw, let d = BlobDigest(ifValid: raw), raw == d.hex else {
            throw PeerAPI.error(.badRequest, "malformed-digest", "a blob is named by 64 lowercase hex digits")
        }
        return d
    }

    func manifest(_ raw: String?) throws -> Response {
        let d = try digest(raw)
        guard let m = try store.manifest(of: d), let r = try store.lookup(digest: d), !r.isPrivate else {
            throw PeerAPI.error(.notFound, "not-found", "blob \(d.hex) is not on this node")
        }
        return try PeerAPI.json(m)
    }

    func blob(_ raw: String?, range rangeHeader: String?, head: Bool, remote: String? = nil, connection: ServingConnection = .unknown) throws -> Response {
        let d = try digest(raw)
        guard let record = try records.record(d, read: { try store.lookup(digest: d) }), !record.isPrivate else {
            if let partial = active.partial(d) {
                return try partialBlob(d, partial, range: rangeHeader, head: head, remote: remote, connection: connection)
            }
            throw PeerAPI.error(.notFound, "not-found", "blob \(d.hex) is not on this node")
        }
        return try RangedAnswer.blob(d, size: record.size, rangeHeader: rangeHeader, head: head) { status, headers, range in
            guard uploads.tryAcquire() else { return try uploadsBusy() }
            let served = self.served
            return Response(status: status, headers: headers, body: PeerAPI.fileBody(record.path, range, connection: connection, uploads: uploads,
                                                                                     limiter: uploadLimiter, served: { served($0, remote) }))
        }
    }

    func uploadsBusy() throws -> Response {
        try PeerAPI.busyResponse("this node serves \(uploads.limit) uploads at once; retry shortly")
    }

    /// Bytes of a download in progress: only ranges that lie within verified chunks (else 416 chunk-unavailable).
    func partialBlob(_ d: BlobDigest, _ partial: PartialDownload, range rangeHeader: String?, head: Bool,
                     remote: String? = nil, connection: ServingConnection = .unknown) throws -> Response {
        let layout = partial.layout
        guard case .range(let r) = ByteRangeRequest.parse(rangeHeader, size: layout.size),
              layout.chunks(covering: r).allSatisfy(partial.isVerified) else {
            var h = HTTPFields()
            h[.contentRange] = "bytes */\(layout.size)"
            return try PeerAPI.errorResponse(.rangeNotSatisfiable, "chunk-unavailable",
                                             "only verified chunks of a download in progress are served; see /availability", headers: h)
        }
        var headers = HTTPFields()
        headers[.acceptRanges] = "bytes"
        headers[.contentType] = "application/octet-stream"
        headers[.contentRange] = ContentRange(first: r.lowerBound, last: r.upperBound - 1, total: layout.size).header
        headers[.contentLength] = String(r.count)
        if head { return Response(status: .partialContent, headers: headers) }
        guard uploads.tryAcquire() else { return try uploadsBusy() }
        let served = self.served
        return Response(status: .partialContent, headers: headers, body: PeerAPI.fileBody(partial.dataPath, r, connection: connection, uploads: uploads,
                                                                                               limiter: uploadLimiter, served: { served($0, remote) }))
    }

    /// Streams `range` of a file, releasing the upload slot when done; `served` is told of each piece written. On a
    /// `connection` with a `SendfileHandler`, as file regions of the file opened once (4 MiB, or 512 KiB under an upload
    /// rate limit, each after the limiter); else in 512 KiB reads (NIOFileSystem).
    static func fileBody(_ path: String, _ range: Range<Int64>, connection: ServingConnection, uploads: UploadLimiter, limiter: RateLimiter?,
                         served: @escaping @Sendable (Int) -> Void = { _ in }) -> ResponseBody {
        ResponseBody(contentLength: range.count) { writer in
            defer { uploads.release() }
            if let sender = await connection.sender() {
                let file = try OpenFile(path: path)
                try await sender.send(file, range, to: &writer, regionSize: limiter == nil ? FileRegionSender.regionSize : 512 << 10,
                                      before: { try await limiter?.consume($0) }, after: served)
                try await writer.finish(nil)
                return
            }
            try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { file in
                for try await chunk in file.readChunks(in: range.lowerBound..<range.upperBound, chunkLength: .kibibytes(512)) {
                    try await limiter?.consume(chunk.readableBytes)
                    let n = chunk.readableBytes
                    try await writer.write(chunk)
                    served(n)
                }
            }
            try await writer.finish(nil)
        }
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    struct ErrorBody: Codable { struct Inner: Codable { var code: String; var message: String }; var error: Inner }

    static func errorResponse(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) throws -> Response {
        try json(ErrorBody(error: .init(code: code, message: message)), status: status, headers: headers)
    }

    /// `503 busy` with `Retry-After: 1`: every slot for streaming files (to peers, or to browsers) is taken.
    static func busyResponse(_ message: String) throws -> Response {
        var h = HTTPFields()
        h[.retryAfter] = "1"
        return try errorResponse(.serviceUnavailable, "busy", message, headers: h)
    }

    /// An error Hummingbird turns into a JSON error body.
    static func error(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> APIError {
        APIError(status: status, code: code, message: message)
    }
}

/// An API error with a stable code, rendered as `{"error":{"code":…,"message":…}}`.
public struct APIError: HTTPResponseError {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try PeerAPI.errorResponse(status, code, message)
    }
}
