import AsyncHTTPClient
import Foundation
import ModelCacheCore
import NIOCore
import NIOHTTP1

/// The node's Hugging Face endpoint over its control socket (`modelcache hf download`), and `hf import` steps.
extension ControlClient {
    public struct HubAnswer: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public func first(_ name: String) -> String? { headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1 }
        /// The Hub's error code and message, for a one-line error.
        public var errorText: String {
            let message = first("X-Error-Message") ?? String(decoding: body.prefix(300), as: UTF8.self)
            return (first("X-Error-Code").map { $0 + ": " } ?? "") + message
        }
    }

    /// A request to the node's Hub endpoint (`path` as on the Hub: `/api/…`, `/{repo}/resolve/…`). A GET's body is
    /// read up to `maxBody` bytes (a file's bytes are drained: the node stores them as it streams them).
    public func hub(_ method: HTTPMethod, _ path: String, auth: String?, maxBody: Int = 256 << 20,
                    timeout: TimeAmount = .hours(6)) async throws -> HubAnswer {
        var req = HTTPClientRequest(url: url(path))
        req.method = method
        if let auth { req.headers.add(name: "Authorization", value: auth) }
        let res = try await http.execute(req, timeout: timeout)
        var body: [UInt8] = []
        for try await part in res.body {
            if body.count + part.readableBytes <= maxBody { body.append(contentsOf: part.readableBytesView) }
        }
        return HubAnswer(status: Int(res.status.code), headers: res.headers.map { ($0.name, $0.value) }, body: body)
    }

    /// The node's `/v1/local/info` (id, name, port, cacheDir, hfUpstream).
    public func info() async throws -> [String: String] { try await send("/v1/local/info") }

    public func importHub(_ r: HubImportRequest) async throws -> HubImportOutcome {
        try await send("/v1/local/hf-import", method: .POST, timeout: .hours(6), body: try JSONEncoder().encode(r))
    }
}
