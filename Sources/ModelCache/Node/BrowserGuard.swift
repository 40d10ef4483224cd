import HTTPTypes
import Hummingbird
import Logging
import ModelCacheCore
import NIOCore

/// Applies `BrowserAccess` to the browser routes (status page, assets, `/v1/web/…`): refuses what it refuses,
/// answers CORS preflights, and adds CORS headers for allowed origins. protocol/PROTOCOL.md §12.
struct BrowserGuard<Context: ConnectionRequestContext>: RouterMiddleware {
    let access: @Sendable () -> BrowserAccess?
    let kind: BrowserAccess.Kind
    /// The uid that opened a loopback connection, from its two ends (`SocketOwner.uid`); nil when unknown.
    let clientUser: @Sendable (_ client: SocketAddress, _ node: SocketAddress) -> UInt32?
    let logger: Logger

    static var tokenField: HTTPField.Name { HTTPField.Name(BrowserAccess.tokenHeader)! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let access = access() else {
            return try PeerAPI.errorResponse(.serviceUnavailable, "busy", "the node is starting; retry shortly")
        }
        let remote = context.remoteAddress?.ipAddress
        let loopback = remote.map(BrowserAccess.isLoopback(ip:)) ?? false
        var user: UInt32?
        if loopback, let client = context.remoteAddress, let node = context.localAddress { user = clientUser(client, node) }
        let h = request.headers
        let decision = access.decide(BrowserAccess.Request(
            method: request.method.rawValue, kind: kind, host: request.head.authority, origin: h[.origin],
            fetchSite: h[HTTPField.Name("Sec-Fetch-Site")!], fetchMode: h[HTTPField.Name("Sec-Fetch-Mode")!],
            token: BrowserAccess.presentedToken(header: h[Self.tokenField], authorization: h[.authorization]),
            remoteIsLoopback: loopback, clientUser: user))
        switch decision {
        case .refuse(let status, let code, let message):
            logger.info("browser request refused", metadata: [
                "http.method": "\(request.method)", "http.path": "\(request.uri.path)", "refusal": "\(code)",
                "client.address": "\(remote ?? "?")", "client.uid": "\(user.map(String.init) ?? "?")", "http.origin": "\(h[.origin] ?? "")"])
            return try PeerAPI.errorResponse(.init(code: status), code, message)
        case .preflight(let headers):
            return Response(status: .noContent, headers: Self.fields(headers))
        case .allow(let headers):
            var response: Response
            do {
                response = try await next(request, context)
            } catch let e as any HTTPResponseError {
                response = try e.response(from: request, context: context)
            }
            for f in Self.fields(headers) { response.headers[f.name] = f.value }
            return response
        }
    }

    static func fields(_ headers: [BrowserAccess.Header]) -> HTTPFields {
        var f = HTTPFields()
        for h in headers { if let name = HTTPField.Name(h.name) { f[name] = h.value } }
        return f
    }
}
