import Foundation
import HTTPTypes
import Hummingbird
import ModelCacheCore
import NIOCore

/// Blobs: the digest in the request is the trusted digest (protocol §16). A public blob (one an anonymous client may
/// read at the upstream) is a cache blob like any other: offered to peers, fetched as one of the node's jobs. A
/// private one is fetched with the client's credentials, kept off the catalogue, and served again only to a client
/// whose credentials the upstream accepts for it.
extension RegistryService {
    func blob(_ up: RegistryUpstream, _ repo: String, _ d: BlobDigest, _ call: Call) async throws -> Response {
        let url = up.blobURL(repo, d)
        let stored = try store.lookup(digest: d)
        let hint = blobHints.withLock { $0[d] }
        var size = stored?.size ?? hint?.size
        var isPublic: Bool
        let repoIsPublic = try store.registryRepoIsPublic(upstream: up.base, repo: repo) ?? false
        if let stored, !stored.isPrivate {
            isPublic = true  // these bytes are public somewhere: serving them reveals nothing
        } else if call.localOnly {
            return try RegistryService.error(.notFound, "BLOB_UNKNOWN", "not stored here", head: call.isHead)
        } else if call.auth == nil, stored == nil, let hint, hint.isPublic || repoIsPublic {
            isPublic = true  // named by a manifest an anonymous client read
        } else {
            // Ask the upstream whether this client may read it (with its credentials, or anonymously).
            switch await up.request(.HEAD, "/v2/\(repo)/blobs/sha256:\(d.hex)", repo: repo, clientAuth: call.auth) {
            case .answer(let a) where a.isSuccess:
                if a.status < 300, let n = a.first("Content-Length").flatMap({ Int64($0) }), n >= 0 { size = size ?? n }
                isPublic = call.auth == nil ? true : await up.isPublic(.HEAD, "/v2/\(repo)/blobs/sha256:\(d.hex)", repo: repo)
            case .answer(let a):
                return RegistryService.passThrough(a, head: call.isHead)
            case .unreachable(let reason):
                // Offline: a blob of a public repository may still come from peers; a private one may not.
                guard call.auth == nil, stored == nil else {
                    return try RegistryService.error(.serviceUnavailable, "UNAVAILABLE", "\(reason): credentials cannot be checked", head: call.isHead)
                }
                isPublic = true
            }
        }
        if let stored, isPublic, stored.isPrivate { try store.markPublic(stored.sha256) }
        if size == nil, let held = await node.directory.view().holders(of: d).first { size = held.1.size }
        guard let size else {
            return try RegistryService.error(.serviceUnavailable, "UNAVAILABLE",
                                             "the size of sha256:\(d.hex) is unknown: the upstream and the peers were asked", head: call.isHead)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[RegistryHeader.contentDigest] = "sha256:" + d.hex
        headers[.eTag] = "\"sha256:\(d.hex)\""
        let title = hint?.title ?? "\(up.mirror.name)/\(repo)"
        let want = VerifiedDownloads.Want(url: url, sha256: d, isPublic: isPublic, auth: call.auth,
                                          title: "\(title) (blob \(d.short))", useOrigin: !up.isKnownDown)
        return try await downloads.answer(want, size: size, blob: try store.lookup(digest: d), request: call.request, connection: call.connection, headers: headers,
                                          unsatisfiable: { try RegistryService.error(.rangeNotSatisfiable, "BLOB_UNKNOWN", "sha256:\(d.hex) has \(size) bytes", head: false, headers: $0) })
    }

    // MARK: answers

    /// The distribution API's error body: `{"errors":[{"code":…,"message":…}]}`.
    static func error(_ status: HTTPResponse.Status, _ code: String, _ message: String, head: Bool,
                      headers: HTTPFields = [:]) throws -> Response {
        var h = headers
        h[RegistryHeader.apiVersion] = "registry/2.0"
        let clean = String(message.unicodeScalars.filter { $0.isASCII && $0.value >= 32 }.prefix(400).map(Character.init))
        let obj: [String: Any] = ["errors": [["code": code, "message": clean]]]
        let body = Array((try? JSONSerialization.data(withJSONObject: obj, options: [.withoutEscapingSlashes])) ?? Data())
        h[.contentType] = "application/json"
        h[.contentLength] = String(body.count)
        if head { return Response(status: status, headers: h) }
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func json(_ body: [UInt8], head: Bool) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        h[RegistryHeader.apiVersion] = "registry/2.0"
        h[.contentLength] = String(body.count)
        if head { return Response(status: .ok, headers: h) }
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// An upstream's definite answer (401 with its challenge, 404, …) relayed with the headers a client reads.
    static func passThrough(_ a: HubUpstream.Answer, head: Bool) -> Response {
        a.relayed(head: head) { passed.contains($0) }
    }

    static let passed: Set<String> = ["content-type", "www-authenticate", "docker-distribution-api-version", "retry-after"]
}
