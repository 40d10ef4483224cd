import HTTPTypes
import Hummingbird
import Logging
import ModelCacheCore
import NIOCore

/// `GET /metrics` on the node's listen address (protocol/PROTOCOL.md §7): the node's `CacheMetrics` in Prometheus'
/// text format, for clients `MetricsAccess` lets in (this machine; LAN clients get `403 not-local`).
struct MetricsAPI: Sendable {
    let metrics: CacheMetrics
    /// The figures the gauges show, read at each scrape.
    let snapshot: @Sendable () async throws -> CacheMetrics.Snapshot
    /// Whether a request proved the cluster key (not wired yet: always false, so only loopback is let in).
    let provedClusterKey: @Sendable (Request) -> Bool
    let logger: Logger

    init(metrics: CacheMetrics, snapshot: @escaping @Sendable () async throws -> CacheMetrics.Snapshot,
         provedClusterKey: @escaping @Sendable (Request) -> Bool = { _ in false }, logger: Logger) {
        self.metrics = metrics
        self.snapshot = snapshot
        self.provedClusterKey = provedClusterKey
        self.logger = logger
    }

    func addRoutes<Context: RemoteAddressRequestContext>(to router: Router<Context>) {
        router.get("/metrics") { request, context in try await self.respond(request, remote: context.remoteAddress) }
    }

    func respond(_ request: Request, remote: SocketAddress?) async throws -> Response {
        let ip = remote?.ipAddress
        let loopback = ip.map(BrowserAccess.isLoopback(ip:)) ?? false
        switch MetricsAccess.decide(remoteIsLoopback: loopback, provedClusterKey: provedClusterKey(request)) {
        case .refuse(let status, let code, let message):
            logger.info("metrics request refused", metadata: ["client.address": "\(ip ?? "?")", "refusal": "\(code)"])
            return try PeerAPI.errorResponse(.init(code: status), code, message)
        case .allow:
            let figures: CacheMetrics.Snapshot
            do {
                figures = try await snapshot()
            } catch {
                return try PeerAPI.errorResponse(.internalServerError, "io-error",
                                                 "cannot read the cache index for /metrics: \(error); check the cache directory")
            }
            var headers = HTTPFields()
            headers[.contentType] = CacheMetrics.contentType
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition(figures))))
        }
    }
}
