import AsyncHTTPClient
import Foundation
import Logging
import ModelCacheCore
import NIOCore

/// Talks to a running node over its control socket (what `modelcache fetch` does when a node runs on the cache).
public struct ControlClient: Sendable {
    public let socketPath: String
    let http: HTTPClient

    public init(socketPath: String, http: HTTPClient) {
        self.socketPath = socketPath
        self.http = http
    }

    func url(_ path: String) -> String {
        let encoded = socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketPath
        return "http+unix://\(encoded)\(path)"
    }

    /// True when a node answers on the socket.
    public func isNodeRunning() async -> Bool {
        guard PosixFile.exists(socketPath) else { return false }
        do {
            let res = try await http.execute(HTTPClientRequest(url: url("/v1/local/info")), timeout: .seconds(2))
            _ = try await res.body.collect(upTo: 1 << 16)
            return res.status == .ok
        } catch { return false }
    }

    public func fetch(_ r: FetchRequest) async throws -> FetchResult {
        var req = HTTPClientRequest(url: url("/v1/local/fetch"))
        req.method = .POST
        req.headers.add(name: "Content-Type", value: "application/json")
        let body = ControlAPI.FetchBody(url: r.url, sha256: r.expected?.hex, connections: r.connections,
                                        useOrigin: r.useOrigin, chunkSize: r.chunkSize)
        req.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        let res = try await http.execute(req, timeout: .hours(24))
        let bytes = try await res.body.collect(upTo: 16 << 20)
        if res.status == .ok { return try JSONDecoder().decode(FetchResult.self, from: Data(buffer: bytes)) }
        if let e = try? JSONDecoder().decode(PeerAPI.ErrorBody.self, from: Data(buffer: bytes)) {
            throw NodeError(code: e.error.code, message: e.error.message)
        }
        throw NodeError(code: "node-error", message: "the node answered \(res.status.code)")
    }

    public func peers() async throws -> [PeerDirectory.Status] {
        let res = try await http.execute(HTTPClientRequest(url: url("/v1/local/peers")), timeout: .seconds(10))
        return try JSONDecoder().decode([PeerDirectory.Status].self, from: Data(buffer: try await res.body.collect(upTo: 16 << 20)))
    }
}

/// An error reported by the node, carrying its stable code.
public struct NodeError: Error, CustomStringConvertible, Sendable {
    public var code: String
    public var message: String
    public var description: String { message }

    public var exitCode: Int32 {
        switch code {
        case "malformed-url", "malformed-digest", "bad-request": 64
        case "bad-status": 3
        case "fetch-error", "no-source", "peer-rejected": 4
        case "disk-full", "quota-exceeded": 6
        case "not-found": 2
        case "aborted": 130
        default: 5
        }
    }
}
