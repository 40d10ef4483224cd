import AsyncHTTPClient
import Foundation
import Logging
import ModelCacheCore
import NIOCore

/// Where a peer listens.
public struct PeerAddress: Hashable, Sendable, Codable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `HOST:PORT` (`[v6]:PORT` for IPv6). Port 0 (any free port) only with `allowAnyPort`, for listen addresses.
    /// `role` names the value in errors ("peer", "--listen address").
    public init(parsing s: String, allowAnyPort: Bool = false, role: String = "peer") throws(ModelCacheError) {
        let parsed = try HostPort(parsing: s, allowAnyPort: allowAnyPort, role: role)
        self.init(host: parsed.host, port: parsed.port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    public var baseURL: String { "http://\(description)" }
    public func blobURL(_ d: BlobDigest) -> String { baseURL + "/v1/blobs/" + d.hex }
}

/// Reads a peer's catalogue and manifests. Everything a peer says is data to check, never trusted as is.
public struct PeerClient: Sendable {
    public let http: HTTPClient
    /// The node's cluster key: every request is signed, and a catalogue counts only with a valid answer signature.
    public let clusterKey: ClusterKey?
    let logger: Logger
    static let maxCatalogueBytes = 64 << 20

    public init(http: HTTPClient, clusterKey: ClusterKey? = nil, logger: Logger) {
        self.http = http
        self.clusterKey = clusterKey
        self.logger = logger
    }

    /// A GET to a peer, signed when the node has a cluster key; the nonce it carries (nil: unsigned).
    func request(_ url: String) -> (HTTPClientRequest, nonce: String?) {
        var req = HTTPClientRequest(url: url)
        let nonce = clusterKey?.sign(&req)
        return (req, nonce)
    }

    /// The catalogue, or nil when the peer answered 304 to `etag`.
    public func catalogue(_ peer: PeerAddress, ifNoneMatch etag: String?) async throws -> (Catalogue?, etag: String?) {
        var (req, nonce) = request(peer.baseURL + "/v1/catalogue")
        req.headers.add(name: "Accept-Encoding", value: "gzip")
        if let etag { req.headers.add(name: "If-None-Match", value: etag) }
        let res = try await http.execute(req, timeout: .seconds(10), logger: logger)
        let newETag = res.headers.first(name: "ETag")
        if res.status == .notModified { return (nil, etag) }
        guard res.status == .ok else {
            throw ModelCacheError.peerRejected(peer: peer.description, detail: "catalogue answered \(res.status.code)")
        }
        var bytes = Array(buffer: try await res.body.collect(upTo: PeerClient.maxCatalogueBytes))
        // A stranger could answer in a member's place (a spoofed address, a --peer of another cluster): only a body
        // signed with the cluster's key over this request's nonce is a member's catalogue.
        if let clusterKey, let nonce,
           !clusterKey.validAnswer(res.headers.first(name: ClusterKey.answerHeader), nonce: nonce, body: bytes) {
            throw ModelCacheError.peerRejected(peer: peer.description,
                                               detail: "catalogue is not signed with this node's cluster key (a node of another cluster?)")
        }
        if res.headers.first(name: "Content-Encoding")?.lowercased() == "gzip" {
            guard let inflated = Gzip.decompress(bytes, limit: PeerClient.maxCatalogueBytes) else {
                throw ModelCacheError.peerRejected(peer: peer.description, detail: "catalogue is not valid gzip")
            }
            bytes = inflated
        }
        do {
            return (try JSONDecoder().decode(Catalogue.self, from: Data(bytes)), newETag)
        } catch {
            throw ModelCacheError.peerRejected(peer: peer.description, detail: "catalogue is not valid: \(error)")
        }
    }

    /// What a peer holds of a blob (nil: neither stored nor downloading there). `after` long-polls (≤ 1 s).
    public func availability(_ peer: PeerAddress, _ d: BlobDigest, after: Int?) async throws -> ActiveDownloads.Availability? {
        let url = peer.blobURL(d) + "/availability" + (after.map { "?after=\($0)" } ?? "")
        let res = try await http.execute(request(url).0, timeout: .seconds(5), logger: logger)
        let body = try await res.body.collect(upTo: 1 << 20)
        if res.status == .notFound { return nil }
        guard res.status == .ok, let a = PeerAvailability.decode(Array(buffer: body)) else {
            throw ModelCacheError.peerRejected(peer: peer.description, detail: "availability of \(d.short) answered \(res.status.code)")
        }
        return a
    }

    public func manifest(_ peer: PeerAddress, _ d: BlobDigest) async throws -> Manifest {
        let res = try await http.execute(request(peer.blobURL(d) + "/manifest").0, timeout: .seconds(10), logger: logger)
        guard res.status == .ok else {
            throw ModelCacheError.peerRejected(peer: peer.description, detail: "manifest of \(d.short) answered \(res.status.code)")
        }
        let body = try await res.body.collect(upTo: 16 << 20)
        guard let m = try? JSONDecoder().decode(Manifest.self, from: Data(buffer: body)), m.sha256 == d else {
            throw ModelCacheError.peerRejected(peer: peer.description, detail: "manifest of \(d.short) is invalid or names another blob")
        }
        return m
    }
}
