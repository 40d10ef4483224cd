import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import ModelCacheCore
import NIOCore
import NIOHTTP1

/// Talks to the origin server: a HEAD probe that follows redirects itself (so that headers on the hops, such as
/// Hugging Face's `X-Linked-Etag` on its 302, are kept) and streaming Range GETs.
public struct OriginClient: Sendable {
    public let http: HTTPClient
    public var headers: [(String, String)]
    /// Shared limit on body bytes (the node's `--max-origin-rate`), if any.
    public var limiter: RateLimiter?
    /// Direct, or through the site's proxy (`--origin-proxy`, `http_proxy`…); a client for a LAN peer is direct.
    public var route: OriginRoute
    /// Set when the "origin" is a peer of a keyed node: every request is signed (protocol §14).
    public var clusterKey: ClusterKey?
    /// Whether this client talks to a LAN peer (set by the engine): a peer that gives no answer is
    /// `peerUnreachable`, named as a peer, not as "the origin".
    public var isPeer = false
    /// The node's own credentials for some origins (a registry's anonymous tokens), when `headers` has none.
    public var credentials: OriginCredentials?
    let logger: Logger
    static let maxRedirects = 10

    public init(http: HTTPClient, headers: [(String, String)] = [], limiter: RateLimiter? = nil,
                route: OriginRoute = .direct, clusterKey: ClusterKey? = nil, logger: Logger) {
        self.http = http
        self.headers = headers
        self.limiter = limiter
        self.route = route
        self.clusterKey = clusterKey
        self.logger = logger
    }

    /// The extra headers for a request to `target`: credentials (`Authorization`, `Cookie`) only while `target` is
    /// on the requested URL's origin (scheme, host, port): a redirect to a CDN never sees the user's token.
    func headers(for target: String, requested: String) async -> [(String, String)] {
        var out = headers
        if !out.contains(where: { $0.0.lowercased() == "user-agent" }) { out.append(("User-Agent", OriginClient.userAgent)) }
        guard OriginClient.sameOrigin(target, requested) else {
            return out.filter { let n = $0.0.lowercased(); return n != "authorization" && n != "cookie" }
        }
        if let credentials, !out.contains(where: { $0.0.lowercased() == "authorization" }),
           let auth = await credentials.authorization(for: requested) {
            out.append(("Authorization", auth))
        }
        return out
    }

    public static let userAgent = "modelcache/\(ModelCacheVersion.string)"

    static func sameOrigin(_ a: String, _ b: String) -> Bool {
        guard let x = URLComponents(string: a), let y = URLComponents(string: b) else { return false }
        func port(_ c: URLComponents) -> Int? { c.port ?? (c.scheme?.lowercased() == "https" ? 443 : c.scheme?.lowercased() == "http" ? 80 : nil) }
        return x.scheme?.lowercased() == y.scheme?.lowercased() && x.host?.lowercased() == y.host?.lowercased() && port(x) == port(y)
    }

    /// Fails with `.rangeIgnored` when a server answers a partial request with the whole body.
    public struct RangeIgnored: Error {}

    public func probe(_ url: String) async throws -> OriginInfo {
        var hops: [OriginInfo.Hop] = []
        var current = url
        for _ in 0...OriginClient.maxRedirects {
            var req = HTTPClientRequest(url: current)
            req.method = .HEAD
            for (k, v) in await headers(for: current, requested: url) { req.headers.add(name: k, value: v) }
            let res = try await execute(req, url: url) { res in (status: res.status, headers: res.headers) }
            if res.status == .methodNotAllowed || res.status == .notImplemented {
                // Some servers refuse HEAD: a one-byte GET gives the same facts through Content-Range.
                req.method = .GET
                req.headers.replaceOrAdd(name: "Range", value: "bytes=0-0")
                let g = try await execute(req, url: url) { g in
                    _ = try? await g.body.collect(upTo: 1024)
                    return (status: g.status, headers: g.headers)
                }
                hops.append(OriginInfo.Hop(url: current, status: Int(g.status.code), headers: g.headers.map { ($0.name, $0.value) }))
                try OriginClient.check(g.status, url: url)
                break
            }
            let hop = OriginInfo.Hop(url: current, status: Int(res.status.code), headers: res.headers.map { ($0.name, $0.value) })
            hops.append(hop)
            if (300...399).contains(Int(res.status.code)), let loc = res.headers.first(name: "Location") {
                guard let next = URL(string: loc, relativeTo: URL(string: current))?.absoluteString else {
                    throw ModelCacheError.protocolViolation("redirect to malformed Location '\(loc)'")
                }
                if let problem = HTTPURLCheck.problem(next) {
                    throw ModelCacheError.protocolViolation("the origin of \(url) redirected to \(next): \(problem)")
                }
                if hops.contains(where: { $0.url == next }) {
                    throw ModelCacheError.protocolViolation("the origin of \(url) redirects in a loop (back to \(next))")
                }
                current = next
                continue
            }
            try OriginClient.check(res.status, url: url)
            return OriginInfo.from(hops: hops)
        }
        if let last = hops.last, (200...299).contains(last.status) { return OriginInfo.from(hops: hops) }
        throw ModelCacheError.protocolViolation("more than \(OriginClient.maxRedirects) redirects for \(url)")
    }

    static func check(_ status: HTTPResponseStatus, url: String) throws {
        guard (200...299).contains(Int(status.code)) else {
            throw ModelCacheError.originStatus(url: url, status: Int(status.code), reason: status.reasonPhrase)
        }
    }

    /// Whether a failure is worth another attempt (network trouble, 5xx, 408, 429) or final (404, 403, a protocol
    /// violation, ...): `RetryPolicy` decides.
    public static func isRetryable(_ error: any Error) -> Bool { RetryPolicy.isRetryable(error) }

    /// Sends `req` (directly or through the proxy, as `route` says) and hands the response to `handle`; the body
    /// can be read only inside it. No response is `originUnreachable`; what `handle` throws passes unchanged.
    func execute<T: Sendable>(_ req: HTTPClientRequest, url: String,
                              _ handle: (HTTPClientResponse) async throws -> T) async throws -> T {
        // The HTTP client traps on some URLs (an IP literal with a port above 65535): check every one first. A bad
        // URL other than the one asked for came from the origin (a redirect, a stored final URL): a violation.
        if let problem = HTTPURLCheck.problem(req.url) {
            if req.url == url { throw ModelCacheError.malformedURL(url) }
            throw ModelCacheError.protocolViolation("the origin of \(url) sent the client to \(req.url): \(problem)")
        }
        var req = req
        clusterKey?.sign(&req)
        do {
            return try await route.execute(req, http: http, timeout: .seconds(30), logger: logger, handle)
        } catch let failed as OriginRoute.Failed {
            if isPeer { throw ModelCacheError.peerUnreachable(peer: OriginClient.hostAndPort(url), detail: OriginClient.describe(failed)) }
            throw ModelCacheError.originUnreachable(url: url, detail: OriginClient.describe(failed))
        }
    }

    /// `HOST:PORT` of a URL, as a peer is named in messages (the URL itself when it has no host).
    static func hostAndPort(_ url: String) -> String {
        guard let c = URLComponents(string: url), let host = c.host, !host.isEmpty else { return url }
        let shown = host.contains(":") ? "[\(host)]" : host
        return c.port.map { "\(shown):\($0)" } ?? shown
    }

    static func describe(_ error: any Error) -> String {
        let s = String(describing: error)
        return s.count > 160 ? String(s.prefix(160)) + "…" : s
    }

    /// GETs `range` of the blob (nil = the whole body) and hands each piece to `sink` with its offset.
    /// Checks status, Content-Range and length; a changed ETag is `originChanged`. `ifRange` (a resumed body): the
    /// range is asked only if the file still has the probed strong ETag (`If-Range`), else the server sends it all,
    /// which fails with `RangeIgnored`.
    public func fetch(url: String, range: Range<Int64>?, info: OriginInfo, ifRange: Bool = false,
                      sink: (ByteBuffer, Int64) async throws -> Void) async throws {
        var req = HTTPClientRequest(url: info.finalURL)
        for (k, v) in await headers(for: info.finalURL, requested: url) { req.headers.add(name: k, value: v) }
        if let range { req.headers.add(name: "Range", value: "bytes=\(range.lowerBound)-\(range.upperBound - 1)") }
        if ifRange, range != nil, let etag = info.etag, !etag.hasPrefix("W/") { req.headers.add(name: "If-Range", value: etag) }
        try await execute(req, url: url) { res in
            try await receive(res, url: url, range: range, info: info, sink: sink)
        }
    }

    /// Checks a Range GET's answer against the probe and streams its body to `sink`.
    private func receive(_ res: HTTPClientResponse, url: String, range: Range<Int64>?, info: OriginInfo,
                         sink: (ByteBuffer, Int64) async throws -> Void) async throws {
        try OriginClient.check(res.status, url: url)
        if let etag = info.etag, let now = res.headers.first(name: "ETag"),
           OriginInfo.normalizeETag(now) != OriginInfo.normalizeETag(etag) {
            throw ModelCacheError.originChanged(url: url, detail: "ETag \(etag) became \(now)")
        }
        let start: Int64
        let expectedLength: Int64?
        // A peer's size comes from the manifest the peers agreed on, not from a HEAD: a peer that says otherwise breaks
        // the protocol (blamed by the engine); only an origin's file can change.
        let who = isPeer ? "peer" : "origin"
        if res.status == .partialContent {
            guard let range, let cr = res.headers.first(name: "Content-Range").flatMap(ContentRange.init(parsing:)),
                  cr.first == range.lowerBound, cr.last == range.upperBound - 1 else {
                throw ModelCacheError.protocolViolation("\(who) sent a wrong Content-Range for \(url)")
            }
            if let total = cr.total, let size = info.size, total != size {
                if isPeer {
                    throw ModelCacheError.protocolViolation("peer \(OriginClient.hostAndPort(url)) says the blob has \(total) bytes where the agreed manifest says \(size)")
                }
                throw ModelCacheError.originChanged(url: url, detail: "size \(size) became \(total)")
            }
            start = range.lowerBound
            expectedLength = Int64(range.count)
        } else {
            if let range, !(range.lowerBound == 0 && Int64(range.count) == info.size) { throw RangeIgnored() }
            start = 0
            expectedLength = info.size
        }
        if let expectedLength, let declared = res.headers.first(name: "Content-Length"), Int64(declared) != expectedLength {
            let said = isPeer ? "the agreed manifest says \(info.size.map(String.init) ?? "no size")" : "the HEAD said \(info.size.map(String.init) ?? "no size")"
            throw ModelCacheError.protocolViolation("the \(isPeer ? "peer at" : "origin of") \(url) declares Content-Length \(declared) where \(expectedLength) bytes are due (\(said))")
        }
        var received: Int64 = 0
        var body = res.body.makeAsyncIterator()
        while true {
            // What the body's stream throws is the transfer's failure; what `sink` throws (a chunk that did not match,
            // a full disk, a copy that lost its race) reaches the caller as it is.
            let next: ByteBuffer?
            do {
                next = try await body.next()
                if let next { try await limiter?.consume(next.readableBytes) }
            } catch let e as ModelCacheError {
                throw e
            } catch let e as HTTPClientError where e == .readTimeout {
                throw ModelCacheError.bodyCut(url: url, detail: "stalled after \(received) bytes: no byte within the read timeout", stalled: true)
            } catch {
                throw ModelCacheError.bodyCut(url: url, detail: "interrupted after \(received) bytes: \(OriginClient.describe(error))", stalled: false)
            }
            guard let buffer = next else { break }
            if let expectedLength, received + Int64(buffer.readableBytes) > expectedLength {
                throw ModelCacheError.protocolViolation("\(who) sent more than \(expectedLength) bytes for \(url)")
            }
            try await sink(buffer, start + received)
            received += Int64(buffer.readableBytes)
        }
        if let expectedLength, received != expectedLength {
            throw ModelCacheError.bodyCut(url: url, detail: "ended after \(received) of \(expectedLength) bytes", stalled: false)
        }
    }
}

/// How much one socket read of an origin or peer connection may take: grows from 64 KiB up to 256 KiB while reads fill
/// their buffer (a bulk body), shrinks back when they do not. Not more: every connection keeps a few such buffers
/// and its body stream queues several parts (at 1 MiB a 4-connection fetch took 18 MiB more RSS
/// and no less CPU than at 256 KiB).
let bodyReadAllocator = AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 64 * 1024, maximum: 256 * 1024)

extension HTTPClient {
    /// The client used for origins and peers: redirects followed by the engine itself (to keep hop headers),
    /// stalls detected by a read timeout, bodies passed through undecoded, and connection failures reported at
    /// once (the engine has its own retry and backoff, and must see a refused peer or origin quickly). The connect
    /// timeout fits a LAN and a reachable origin (a SYN answered within 3 s); a dead uplink fails within it, and the
    /// engine then remembers the host as down (protocol §8).
    /// With `proxy`, every request is tunnelled through it (CONNECT): for https origins only (`OriginRoute`).
    public static func forModelCache(connections: Int = 8, readTimeout: TimeAmount = .seconds(20),
                                     connectTimeout: TimeAmount = .seconds(3), proxy: ProxyRule.Server? = nil) -> HTTPClient {
        var config = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: connectTimeout, read: readTimeout))
        if let proxy {
            config.proxy = .server(host: proxy.host, port: proxy.port,
                                   authorization: proxy.credentials.map { .basic(credentials: Data($0.utf8).base64EncodedString()) })
        }
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, connections))
        config.connectionPool.retryConnectionEstablishment = false
        config.decompression = .disabled
        // Larger socket reads: NIO's default allocator stops at 64 KiB, so a 1 GiB body took 16k reads, each one a
        // hop from the event loop to the task that writes and hashes it (issue 12). Up to 256 KiB per read here.
        // And fewer wake-ups on links slower than loopback: each body's socket gathers a few milliseconds of bytes
        // before it wakes its reader (`ReadBatching`).
        config.http1_1ConnectionDebugInitializer = { channel in HTTPClient.prepareBodyReads(channel) }
        config.http2ConnectionDebugInitializer = { channel in channel.setOption(ChannelOptions.recvAllocator, value: bodyReadAllocator) }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    /// Sets up an HTTP/1 connection's body reads: the larger read buffers, and a `ReadBatchingHandler` right after
    /// the response decoder. Both only make reads cheaper: a channel that takes neither (closed meanwhile, or a
    /// pipeline without that decoder, which the client does not build) is used as it is, never failed for it.
    static func prepareBodyReads(_ channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.submit {
            let sync = channel.pipeline.syncOperations
            try? channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: bodyReadAllocator)
            guard let decoder = try? sync.context(handlerType: ByteToMessageHandler<HTTPResponseDecoder>.self) else { return }
            try? sync.addHandler(ReadBatchingHandler(), position: .after(decoder.handler))
        }
    }
}
