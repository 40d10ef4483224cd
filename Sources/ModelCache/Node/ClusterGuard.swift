import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ModelCacheCore
import NIOCore
import Synchronization

/// On a node with a cluster key, runs before every route (protocol §14): a request that needs the key
/// (`ClusterKey.required`: the peer API from anywhere, everything else from other machines) and does not prove it
/// gets `401 cluster-key-required`, with no catalogue and no byte.
struct ClusterGuard<Context: ConnectionRequestContext>: RouterMiddleware {
    /// The verifier's state (the nonces seen), shared by every connection.
    final class Verifier: Sendable {
        let state: Mutex<ClusterRequestVerifier>
        init(_ v: ClusterRequestVerifier) { state = Mutex(v) }

        func check(method: String, target: String, time: String?, nonce: String?, signature: String?) -> ClusterRequestVerifier.Refusal? {
            let now = Int64(Date().timeIntervalSince1970)
            return state.withLock { $0.check(method: method, target: target, time: time, nonce: nonce, signature: signature, now: now) }
        }
    }

    let verifier: Verifier
    let logger: Logger


    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let remote = context.remoteAddress?.ipAddress
        // This machine: a loopback client, or one that connected from the very address it reached (a client on
        // the node's host using its LAN address, e.g. HF_ENDPOINT=http://<lan ip>:7070).
        let loopback = remote.map { BrowserAccess.isLoopback(ip: $0) || $0 == context.localAddress?.ipAddress } ?? false
        guard ClusterKey.required(path: request.uri.path, remoteIsLoopback: loopback) else { return try await next(request, context) }
        // The target exactly as on the request line: what the member signed.
        let target = request.head.path ?? request.uri.description
        if let refusal = verifier.check(method: request.method.rawValue, target: target, time: request.headers.value(named: ClusterKey.timeHeader),
                                        nonce: request.headers.value(named: ClusterKey.nonceHeader),
                                        signature: request.headers.value(named: ClusterKey.signatureHeader)) {
            logger.info("request refused: the cluster key is not proven", metadata: [
                "http.method": "\(request.method)", "http.path": "\(request.uri.path)", "refusal": "\(refusal.rawValue)",
                "client.address": "\(remote ?? "?")"])
            return try PeerAPI.errorResponse(.unauthorized, ClusterKey.refusalCode, refusal.message)
        }
        return try await next(request, context)
    }
}

extension HTTPFields {
    /// A field's value by name (case-insensitive); nil when absent.
    func value(named name: String) -> String? {
        let wanted = name.lowercased()
        return first(where: { $0.name.canonicalName == wanted })?.value
    }
}
