import Foundation
import HTTPTypes
import Hummingbird
import ModelCacheCore
import NIOCore

/// Revision info, tree listings and the other `/api/…` calls of the client.
extension HubService {
    func revision(_ repo: HubRepo, _ revision: String, _ call: Call) async throws -> Response {
        let path = repo.revisionPath(revision)
        var why = "the upstream was not asked"
        if !call.localOnly {
            switch await upstream.request(.GET, path, auth: call.auth) {
            case .answer(let a) where (200...299).contains(a.status):
                let body = HubXet.strip(json: a.body) ?? a.body
                if let commit = HubService.commit(inRevisionInfo: body) {
                    let isPublic = call.auth == nil ? true : await upstream.isPublic(.GET, path, repo: repo)
                    try store.saveHubRef(repo, revision: revision, commit: commit, info: body, isPublic: isPublic)
                    if commit != revision { try store.saveHubRef(repo, revision: commit, commit: commit, info: body, isPublic: isPublic) }
                }
                return HubService.json(body)
            case .answer(let a):
                return HubService.passThrough(a, head: false)
            case .unreachable(let reason):
                why = reason
            }
        }
        if let ref = try store.hubRef(repo, revision: revision), ref.isPublic {
            return HubService.json(ref.info ?? HubService.minimalInfo(repo, commit: ref.commit))
        }
        if !call.localOnly, let body = await askPeersJSON(path, validate: { HubService.commit(inRevisionInfo: $0) != nil }),
           let commit = HubService.commit(inRevisionInfo: body) {
            try store.saveHubRef(repo, revision: revision, commit: commit, info: body, isPublic: true)
            return HubService.json(body)
        }
        if call.localOnly { return try HubService.error(.notFound, code: nil, "not known here", head: false) }
        return try HubService.error(.serviceUnavailable, code: nil, "\(why), and neither this node nor its peers know \(repo.id)@\(revision)", head: false)
    }

    /// A listing is fetched whole (every page, merged into one answer without `Link`), stripped of Xet, and kept.
    func tree(_ repo: HubRepo, _ revision: String, _ sub: String, _ call: Call) async throws -> Response {
        let query = HubService.canonicalQuery(call.request.uri.query)
        let path = repo.treePath(revision, path: sub) + (query.isEmpty ? "" : "?" + query)
        let key = sub + "?" + query
        var why = "the upstream was not asked"
        if !call.localOnly {
            switch await upstream.listing(path, auth: call.auth) {
            case .answer(let a) where (200...299).contains(a.status):
                let body = HubXet.strip(json: a.body) ?? a.body
                let isPublic = call.auth == nil ? true : await upstream.isPublic(.GET, path, repo: repo)
                try store.saveHubTree(repo, revision: revision, query: key, body: body, isPublic: isPublic)
                return HubService.json(body)
            case .answer(let a):
                return HubService.passThrough(a, head: false)
            case .unreachable(let reason):
                why = reason
            }
        }
        let commit = HubRoute.isCommit(revision) ? nil : try store.hubRef(repo, revision: revision).map(\.commit)
        for rev in [revision, commit].compactMap({ $0 }) {
            if let (body, isPublic) = try store.hubTree(repo, revision: rev, query: key), isPublic { return HubService.json(body) }
        }
        if !call.localOnly, let body = await askPeersJSON(path, validate: { (try? JSONSerialization.jsonObject(with: Data($0))) is [Any] }) {
            try store.saveHubTree(repo, revision: revision, query: key, body: body, isPublic: true)
            return HubService.json(body)
        }
        if call.localOnly { return try HubService.error(.notFound, code: nil, "not known here", head: false) }
        return try HubService.error(.serviceUnavailable, code: nil, "\(why), and neither this node nor its peers list \(repo.id)@\(revision)", head: false)
    }

    /// Other `/api/…` GETs go to the upstream as they are (Xet stripped, `Link` pointed back at this node); nothing
    /// is kept. With the upstream unreachable: 503, which the client treats as "use your own cache".
    func proxy(_ call: Call) async throws -> Response {
        guard !call.localOnly, call.request.method == .get || call.request.method == .head else {
            return try HubService.error(.notFound, code: nil, "not served here", head: call.isHead)
        }
        let target = call.request.uri.path + (call.request.uri.query.map { "?" + $0 } ?? "")
        switch await upstream.request(call.isHead ? .HEAD : .GET, target, auth: call.auth) {
        case .answer(let a):
            var out = a
            if (200...299).contains(a.status), let stripped = HubXet.strip(json: a.body) { out.body = stripped }
            if let host = call.request.head.authority {
                out.headers = out.headers.map { n, v in
                    n.lowercased() == "link" ? (n, v.replacingOccurrences(of: upstream.base, with: "http://" + host)) : (n, v)
                }
            }
            return HubService.passThrough(out, head: call.isHead, keepAll: true)
        case .unreachable(let reason):
            return try HubService.error(.serviceUnavailable, code: nil, reason, head: call.isHead)
        }
    }

    // MARK: helpers

    public static func commit(inRevisionInfo body: [UInt8]) -> String? {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let sha = obj["sha"] as? String, HubRoute.isCommit(sha), obj["id"] is String else { return nil }
        return sha
    }

    /// What the client reads of a revision (`id`, `sha`) when only the commit is known.
    static func minimalInfo(_ repo: HubRepo, commit: String) -> [UInt8] {
        let obj: [String: Any] = ["id": repo.id, "sha": commit, "siblings": [] as [Any]]
        return Array((try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
    }

    /// The query without pagination cursors, its items sorted: the key of a merged listing.
    static func canonicalQuery(_ q: String?) -> String {
        guard let q, !q.isEmpty else { return "" }
        return q.split(separator: "&").filter { !$0.hasPrefix("cursor=") }.sorted().joined(separator: "&")
    }

    static func json(_ body: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        h[.contentLength] = String(body.count)
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Headers of an upstream answer that the client reads (errors: code and message; Xet never).
    static let passedHeaders: Set<String> = ["content-type", "x-error-code", "x-error-message", "x-repo-commit", "www-authenticate",
                                             "retry-after", "x-request-id", "etag", "x-linked-etag", "x-linked-size"]

    static func passThrough(_ a: HubUpstream.Answer, head: Bool, keepAll: Bool = false) -> Response {
        var a = a
        a.headers = HubXet.strip(headers: a.headers)
        return a.relayed(head: head) { keepAll ? !hopByHop.contains($0) : passedHeaders.contains($0) }
    }

    static let hopByHop: Set<String> = ["connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
                                        "upgrade", "proxy-authenticate", "trailer", "te", "set-cookie"]

    /// A Hub-style error: `X-Error-Message` and a JSON `error` (what the client shows), and `X-Error-Code` if given.
    static func error(_ status: HTTPResponse.Status, code: String?, _ message: String, head: Bool,
                      headers: HTTPFields = [:]) throws -> Response {
        var h = headers
        if let code { h[HTTPField.Name("X-Error-Code")!] = code }
        h[HTTPField.Name("X-Error-Message")!] = String(message.unicodeScalars.filter { $0.isASCII && $0.value >= 32 }.prefix(400).map(Character.init))
        if head { return Response(status: status, headers: h) }
        let body = (try? JSONSerialization.data(withJSONObject: ["error": message], options: [.withoutEscapingSlashes])) ?? Data()
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: Array(body))))
    }
}
