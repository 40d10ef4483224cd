import AsyncHTTPClient
import Foundation
import Logging
import ModelCacheCore
import NIOHTTP1
import Synchronization

/// One upstream registry (`serve --registry-mirror NAME=URL`) and its auth dance (protocol §16): a request without
/// the client's own `Authorization` goes out with the node's anonymous bearer token for the repository (asked at the
/// realm of the upstream's `WWW-Authenticate: Bearer` challenge, kept until shortly before it expires); a client's
/// `Authorization` is passed through unchanged. The same tokens serve the fetch engine's blob requests
/// (`OriginCredentials`), renewed during a long download.
final class RegistryUpstream: Sendable {
    let mirror: RegistryMirror
    /// The HTTP side: timeouts, the quiet period after a failure, redirects on the upstream's own origin only.
    let http: HubUpstream
    let logger: Logger
    private let challenge = Mutex<AuthChallenge?>(nil)
    /// What the upstream's `/v2/` said to an anonymous client: its `Basic` challenge, if any, and when it was asked.
    private let ping = Mutex<(basic: String?, at: ContinuousClock.Instant)?>(nil)
    private let tokens = Mutex<[String: (token: String, until: ContinuousClock.Instant)]>([:])
    /// The time that tokens and the `/v2/` answer age by (a test's own clock, so that no test waits on a real one).
    let now: @Sendable () -> ContinuousClock.Instant

    init(mirror: RegistryMirror, http: HTTPClient, route: OriginRoute, logger: Logger,
         now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.mirror = mirror
        self.now = now
        self.http = HubUpstream(base: mirror.base, http: http, route: route, logger: logger)
        self.logger = logger
    }

    var base: String { mirror.base }
    var isKnownDown: Bool { http.isKnownDown }

    func blobURL(_ repo: String, _ d: BlobDigest) -> String { "\(base)/v2/\(repo)/blobs/sha256:\(d.hex)" }

    /// A request for `repo`: with the client's `Authorization`, or the node's anonymous token (asked once more after
    /// a 401 that carries a Bearer challenge).
    func request(_ method: HTTPMethod, _ path: String, repo: String, clientAuth: String?,
                 headers: [(String, String)] = []) async -> HubUpstream.Outcome {
        if let clientAuth { return await http.request(method, path, auth: clientAuth, headers: headers, maxBody: OCIManifest.maxSize) }
        let first = await http.request(method, path, auth: await anonymousAuth(repo), headers: headers, maxBody: OCIManifest.maxSize)
        guard case .answer(let a) = first, a.status == 401, learn(a) else { return first }
        tokens.withLock { _ = $0.removeValue(forKey: repo) }
        guard let auth = await anonymousAuth(repo) else { return first }
        return await http.request(method, path, auth: auth, headers: headers, maxBody: OCIManifest.maxSize)
    }

    /// Records a Bearer challenge from a 401; true when there is one.
    private func learn(_ a: HubUpstream.Answer) -> Bool {
        guard let header = a.first("WWW-Authenticate"), let c = AuthChallenge.parse(header).first(where: \.isBearer),
              c.tokenURL(scope: nil) != nil else { return false }
        challenge.withLock { $0 = c }
        return true
    }

    /// The node's anonymous `Authorization` for `repo`, or nil (the upstream wants no token, or gave none).
    func anonymousAuth(_ repo: String) async -> String? {
        let now = now()
        if let t = tokens.withLock({ $0[repo] }), now < t.until { return "Bearer " + t.token }
        guard let c = challenge.withLock({ $0 }), let url = c.tokenURL(scope: AuthChallenge.pullScope(repo)) else { return nil }
        guard case .answer(let a) = await http.request(.GET, url, auth: nil, maxBody: 1 << 20), (200...299).contains(a.status),
              let token = RegistryToken.parse(a.body) else {
            logger.info("no anonymous token from the registry's realm", metadata: ["registry": "\(mirror.name)", "repo": "\(repo)"])
            return nil
        }
        // Renewed 30 s before it expires (or at half its life when that is shorter).
        let margin = min(30, token.expiresIn / 2)
        tokens.withLock { t in
            if t.count > 1024 { t.removeAll() }
            t[repo] = (token.token, now + .seconds(token.expiresIn - margin))
        }
        return "Bearer " + token.token
    }

    /// For the fetch engine (`OriginCredentials`): the anonymous token of the repository a blob URL names. After a
    /// restart (a resumed job) the challenge is learned from the upstream's `/v2/` first.
    func credentials(for url: String) async -> String? {
        let prefix = base + "/v2/"
        guard url.hasPrefix(prefix), let r = url.dropFirst(prefix.count).range(of: "/blobs/") else { return nil }
        let repo = String(url.dropFirst(prefix.count)[..<r.lowerBound])
        guard RegistryName.isValid(name: repo) else { return nil }
        if challenge.withLock({ $0 }) == nil, case .answer(let a) = await http.request(.GET, "/v2/", auth: nil, maxBody: 1 << 16),
           a.status == 401 {
            _ = learn(a)
        }
        return await anonymousAuth(repo)
    }

    /// The upstream's `WWW-Authenticate: Basic …` when its `/v2/` wants a password from everyone (a private registry),
    /// asked at most every 5 minutes; nil when it does not (a Bearer challenge is the node's to answer), or is
    /// unreachable. Records a Bearer challenge on the way.
    func basicChallenge() async -> String? {
        if let p = ping.withLock({ $0 }), now() - p.at < .seconds(300) { return p.basic }
        guard case .answer(let a) = await http.request(.GET, "/v2/", auth: nil, maxBody: 1 << 16) else { return nil }
        var basic: String? = nil
        if a.status == 401, let header = a.first("WWW-Authenticate") {
            if AuthChallenge.parse(header).first?.scheme == "basic" { basic = header } else { _ = learn(a) }
        }
        let at = now()
        ping.withLock { $0 = (basic, at) }
        return basic
    }

    /// Whether an anonymous client may read what `path` names (asked only when the client sent credentials).
    func isPublic(_ method: HTTPMethod, _ path: String, repo: String, headers: [(String, String)] = []) async -> Bool {
        if case .answer(let a) = await request(method, path, repo: repo, clientAuth: nil, headers: headers) { return a.isSuccess }
        return false
    }
}
