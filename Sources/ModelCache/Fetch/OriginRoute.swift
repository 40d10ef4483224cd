import AsyncHTTPClient
import Foundation
import Logging
import ModelCacheCore
import NIOCore
import Synchronization

/// Where an origin request goes, as `ProxyRule` says: straight to the origin, through the site's proxy in absolute
/// form (http:// origins, which a caching proxy stores), or through a CONNECT tunnel in it (https:// origins).
/// Only origin requests (`OriginClient`, `HubUpstream`) come here: LAN peers are always asked directly.
public struct OriginRoute: Sendable {
    public var rule: ProxyRule

    public init(rule: ProxyRule = .direct) { self.rule = rule }

    public static let direct = OriginRoute()

    /// The request could not be sent or got no response head (connect, proxy, TLS, timeout): no answer from the
    /// origin. Errors thrown by `handle` are not wrapped.
    struct Failed: Error, CustomStringConvertible {
        var underlying: any Error
        var proxy: ProxyRule.Server?

        var description: String {
            (proxy.map { "through the proxy \($0): " } ?? "") + String(describing: underlying)
        }
    }

    /// A failure of `handle`, carried out of the transport unchanged.
    private struct Handled: Error { var error: any Error }

    /// Sends `request` and hands the response to `handle`; the response and its body are valid only inside it.
    func execute<T: Sendable>(_ request: HTTPClientRequest, http: HTTPClient, timeout: TimeAmount, logger: Logger,
                              _ handle: (HTTPClientResponse) async throws -> T) async throws -> T {
        let proxy = rule.server(for: request.url)
        do {
            if let proxy, !request.url.lowercased().hasPrefix("https:") {
                return try await ForwardProxyRequest.execute(request, via: proxy) { response in
                    do { return try await handle(response) } catch { throw Handled(error: error) }
                }
            }
            let client = proxy.map(ProxyTunnels.client(for:)) ?? http
            let response = try await client.execute(request, timeout: timeout, logger: logger)
            do { return try await handle(response) } catch { throw Handled(error: error) }
        } catch let h as Handled {
            throw h.error
        } catch let e as ModelCacheError {
            throw e
        } catch {
            throw Failed(underlying: error, proxy: proxy)
        }
    }
}

/// One AsyncHTTPClient per https proxy, for the life of the process (as `HTTPClient.shared` is): it tunnels https
/// origin requests through the proxy with CONNECT. Proxies come from the command line and the environment, so a
/// process has one or two (a test, one per test proxy); the clients are never shut down.
enum ProxyTunnels {
    private static let clients = Mutex<[ProxyRule.Server: HTTPClient]>([:])

    static func client(for server: ProxyRule.Server) -> HTTPClient {
        clients.withLock { c in
            if let client = c[server] { return client }
            let client = HTTPClient.forModelCache(proxy: server)
            c[server] = client
            return client
        }
    }
}
