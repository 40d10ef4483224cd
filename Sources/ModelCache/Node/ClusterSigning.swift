import AsyncHTTPClient
import Foundation
import ModelCacheCore

/// Signs the requests a node sends to its peers (protocol §14) with the wall clock and a fresh nonce.
extension ClusterKey {
    /// The request target AsyncHTTPClient puts on the request line for `url` (percent-encoded path, then `?query`),
    /// which is what the peer verifies.
    static func requestTarget(of url: String) -> String? {
        guard let u = URL(string: url) else { return nil }
        var target = u.path.isEmpty ? "/" : (URLComponents(url: u, resolvingAgainstBaseURL: true)?.percentEncodedPath ?? u.path)
        if target.isEmpty { target = "/" }
        if let q = u.query { target += "?" + q }
        return target
    }

    /// Adds the time, nonce and signature headers to `request`; returns the nonce (to check a signed answer).
    @discardableResult
    func sign(_ request: inout HTTPClientRequest) -> String {
        let nonce = ClusterKey.randomNonce()
        let target = ClusterKey.requestTarget(of: request.url) ?? "/"
        for (name, value) in signRequest(method: request.method.rawValue, target: target,
                                         time: Int64(Date().timeIntervalSince1970), nonce: nonce) {
            request.headers.replaceOrAdd(name: name, value: value)
        }
        return nonce
    }
}
