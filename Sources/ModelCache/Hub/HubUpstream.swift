import AsyncHTTPClient
import Foundation
import Logging
import ModelCacheCore
import NIOCore
import NIOHTTP1
import Synchronization

/// The Hugging Face Hub (or a mirror) behind a node: `serve --hf-upstream`. Metadata requests only; file bytes go
/// through the fetch engine. Redirects are followed only on the upstream's own origin (a renamed repo), never to
/// another host: a HEAD stops at the 302 to the CDN, whose headers carry the file's commit, sha256 and size.
final class HubUpstream: Sendable {
    struct Answer: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
        var url: String

        func first(_ name: String) -> String? { headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1 }
        var isSuccess: Bool { (200...399).contains(status) }
    }

    enum Outcome: Sendable {
        /// A definite answer (2xx, 3xx to another host, 4xx).
        case answer(Answer)
        /// Network failure, timeout or 5xx: the node answers from what it knows.
        case unreachable(String)
    }

    let base: String
    let http: HTTPClient
    /// Direct, or through the site's proxy (the engine's `originProxy`).
    let route: OriginRoute
    let logger: Logger
    /// Metadata calls must answer well within the client's 10 s; after a failure the upstream is skipped for a while.
    let timeout: TimeAmount
    let quietPeriod: Duration
    private let downUntil = Mutex<ContinuousClock.Instant?>(nil)
    /// Repos that refused an anonymous request lately (`isPublic`).
    private let refusedRepos = Mutex(ExpiringSet<HubRepo>(lifetime: .seconds(60), capacity: 1024))

    init(base: String, http: HTTPClient, route: OriginRoute = .direct, logger: Logger, timeout: TimeAmount = .seconds(7),
         quietPeriod: Duration = .seconds(15)) {
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        self.base = b
        self.http = http
        self.route = route
        self.logger = logger
        self.timeout = timeout
        self.quietPeriod = quietPeriod
    }

    /// Whether a recent failure says not to try now.
    var isKnownDown: Bool { downUntil.withLock { $0.map { ContinuousClock.now < $0 } ?? false } }

    func request(_ method: HTTPMethod, _ pathOrURL: String, auth: String?, headers extra: [(String, String)] = [],
                 maxBody: Int = 64 << 20) async -> Outcome {
        if isKnownDown { return .unreachable("\(base) failed moments ago") }
        var url = pathOrURL.hasPrefix("/") ? base + pathOrURL : pathOrURL
        for _ in 0..<5 {
            var req = HTTPClientRequest(url: url)
            req.method = method
            if let auth { req.headers.add(name: "Authorization", value: auth) }
            req.headers.add(name: "Accept-Encoding", value: "identity")
            req.headers.add(name: "User-Agent", value: OriginClient.userAgent)
            for (n, v) in extra { req.headers.add(name: n, value: v) }
            do {
                let (code, headers, body) = try await route.execute(req, http: http, timeout: timeout, logger: logger) { res in
                    let body = method == .HEAD ? [] : Array(buffer: try await res.body.collect(upTo: maxBody))
                    return (Int(res.status.code), res.headers, body)
                }
                if code >= 500 {
                    markDown()
                    return .unreachable("\(base) answered \(code)")
                }
                if (300...399).contains(code), let loc = headers.first(name: "Location"),
                   let next = URL(string: loc, relativeTo: URL(string: url))?.absoluteString,
                   OriginClient.sameOrigin(next, base) {
                    url = next
                    continue
                }
                downUntil.withLock { $0 = nil }
                return .answer(Answer(status: code, headers: headers.map { ($0.name, $0.value) }, body: body, url: url))
            } catch {
                markDown()
                logger.info("hub upstream unreachable", metadata: ["url": "\(url)", "error": "\(error)"])
                return .unreachable("\(base) unreachable: \(OriginClient.describe(error))")
            }
        }
        return .unreachable("\(base): too many redirects for \(pathOrURL)")
    }

    private func markDown() { downUntil.withLock { $0 = .now + quietPeriod } }

    /// Whether an anonymous client may see what `path` names (asked only when the client sent a token): gated and
    /// private repos answer 401/403/404 to it.
    /// A repo that refused an anonymous client is taken as not public for a minute without asking again (gating and
    /// privacy are per repo; the error is on the safe side: a file kept private that could have been shared).
    func isPublic(_ method: HTTPMethod, _ path: String, repo: HubRepo) async -> Bool {
        if refusedRepos.withLock({ $0.contains(repo) }) { return false }
        if case .answer(let a) = await request(method, path, auth: nil, maxBody: 16 << 20) {
            if a.status == 401 || a.status == 403 { refusedRepos.withLock { $0.insert(repo) } }
            return a.isSuccess
        }
        return false
    }

    /// GETs a paginated listing, following `Link: <…>; rel="next"` on the upstream's origin, and merges the pages
    /// (JSON arrays) into one. The first non-2xx answer is returned as is.
    func listing(_ path: String, auth: String?, maxPages: Int = 1000) async -> Outcome {
        var url = path
        var items: [Any] = []
        for _ in 0..<maxPages {
            let outcome = await request(.GET, url, auth: auth)
            guard case .answer(let a) = outcome else { return outcome }
            guard (200...299).contains(a.status) else { return outcome }
            guard let page = try? JSONSerialization.jsonObject(with: Data(a.body)) as? [Any] else {
                return .answer(a)  // not a list: hand it over unchanged
            }
            items.append(contentsOf: page)
            guard let next = HubXet.nextLink(a.first("Link")), OriginClient.sameOrigin(next, base) else {
                let merged = (try? JSONSerialization.data(withJSONObject: items, options: [.withoutEscapingSlashes])) ?? Data("[]".utf8)
                var done = a
                done.body = Array(merged)
                done.headers = a.headers.filter { $0.0.lowercased() != "link" && $0.0.lowercased() != "content-length" }
                return .answer(done)
            }
            url = next
        }
        return .unreachable("\(base): more than \(maxPages) pages for \(path)")
    }
}
