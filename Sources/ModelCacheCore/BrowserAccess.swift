import Foundation

/// Who may use the node's browser routes (the status page, `modelcache.js`, `/v1/web/…`): pure decisions, applied
/// by the node's `BrowserGuard` middleware. protocol/PROTOCOL.md §12.
///
/// Any web site a user opens can send requests to loopback, so the node answers only
/// - clients on this machine (loopback), never LAN peers;
/// - and of those, only the node's own user (and root): other accounts on a shared machine reach loopback too;
/// - requests whose `Host` is one of the node's own names (a DNS-rebinding attack carries the attacker's name);
/// - same-origin requests (the status page), requests without an origin that a browser did not make cross-site
///   (curl, a navigation), and origins the user allowed (`serve --allow-origin`): CORS headers only for those;
/// - with the node's token for anything that starts, aborts, pins or deletes.
public struct BrowserAccess: Sendable, Equatable {
    /// What a path serves: decides whether CORS applies and whether a cross-site request without `Origin` is fine.
    public enum Kind: Sendable, Equatable {
        /// The status page (holds the token): same-origin only, never CORS.
        case statusPage
        /// Static code anyone may load with a `<script>` tag (`modelcache.js`, the page's CSS and JS).
        case asset
        /// `/v1/web/…`: data and actions.
        case api
    }

    /// The parts of a request the decision needs (header values as received, nil when absent).
    public struct Request: Sendable, Equatable {
        public var method: String
        public var kind: Kind
        public var host: String?
        public var origin: String?
        /// `Sec-Fetch-Site` and `Sec-Fetch-Mode`, which browsers send even when they omit `Origin`.
        public var fetchSite: String?
        public var fetchMode: String?
        /// The token presented (`X-ModelCache-Token`, or `Authorization: Bearer`).
        public var token: String?
        public var remoteIsLoopback: Bool
        /// The local user (uid) whose process holds the client's end of the connection; nil when unknown.
        public var clientUser: UInt32?

        public init(method: String, kind: Kind, host: String?, origin: String? = nil, fetchSite: String? = nil,
                    fetchMode: String? = nil, token: String? = nil, remoteIsLoopback: Bool, clientUser: UInt32?) {
            self.method = method
            self.kind = kind
            self.host = host
            self.origin = origin
            self.fetchSite = fetchSite
            self.fetchMode = fetchMode
            self.token = token
            self.remoteIsLoopback = remoteIsLoopback
            self.clientUser = clientUser
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Go on to the route; add these headers (CORS for an allowed origin, else none) to its response.
        case allow(headers: [Header])
        /// A CORS preflight from an allowed origin: answer 204 with these headers.
        case preflight(headers: [Header])
        /// Answer with this error (no CORS headers, so a browser page learns nothing from it).
        case refuse(status: Int, code: String, message: String)
    }

    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
    }

    /// Origins allowed to use the API cross-origin, normalised (`scheme://host[:port]`, lower case).
    public let allowedOrigins: Set<String>
    /// Accepted `Host` values, lower case, each with the port (and without it when the port is 80).
    public let ownHosts: Set<String>
    /// The node's token (`<cache-dir>/web-token`).
    public let token: String
    /// The port, for messages.
    public let port: Int
    /// The user (uid) the node runs as: the only one, with root, whose clients it answers.
    public let nodeUser: UInt32

    /// - Parameters:
    ///   - names: host names and addresses the node answers to (without port; IPv6 in brackets or bare).
    ///   - nodeUser: the node's effective uid (the owner of its token file).
    public init(allowedOrigins: [String], names: [String], port: Int, token: String, nodeUser: UInt32) {
        self.allowedOrigins = Set(allowedOrigins.compactMap(BrowserAccess.normalizedOrigin))
        var hosts = Set<String>()
        for raw in names + ["127.0.0.1", "localhost", "[::1]"] {
            var n = raw.lowercased()
            if n.isEmpty || n == "0.0.0.0" || n == "::" || n == "[::]" { continue }
            if n.contains(":") && !n.hasPrefix("[") { n = "[\(n)]" }
            hosts.insert("\(n):\(port)")
            if port == 80 { hosts.insert(n) }
        }
        self.ownHosts = hosts
        self.token = token
        self.port = port
        self.nodeUser = nodeUser
    }

    public static let tokenHeader = "X-ModelCache-Token"
    static let allowedMethods = "GET, HEAD, POST, DELETE, OPTIONS"
    static let allowedHeaders = "Authorization, Content-Type, Range, X-ModelCache-Token"
    static let exposedHeaders = "Accept-Ranges, Content-Length, Content-Range, Content-Type, ETag"

    public func decide(_ r: Request) -> Decision {
        guard r.remoteIsLoopback else {
            return .refuse(status: 403, code: "not-local",
                           message: "the status page and the browser API answer only on this machine: open http://127.0.0.1:\(port)/ there")
        }
        // Other accounts on this machine reach loopback too: only the node's user may go on, and root (which can
        // read the token file and the node's memory anyway).
        guard let user = r.clientUser else {
            return .refuse(status: 403, code: "owner-unknown",
                           message: "could not tell which user of this machine opened this connection (it needs Linux's /proc/net/tcp and a client that keeps its socket open): the status page and the browser API answer only the user who runs the node")
        }
        guard user == nodeUser || user == 0 else {
            return .refuse(status: 403, code: "other-user",
                           message: "this node belongs to another user of this machine (uid \(nodeUser)), and its status page and browser API answer only that user: run your own node (`modelcache serve --listen 127.0.0.1:<free port>`)")
        }
        let host = r.host?.lowercased() ?? ""
        guard ownHosts.contains(host) else {
            return .refuse(status: 403, code: "unknown-host",
                           message: "Host '\(r.host ?? "")' is not a name of this node (DNS rebinding is refused): use http://127.0.0.1:\(port)/ or http://localhost:\(port)/")
        }
        let origin = r.origin.map { BrowserAccess.normalizedOrigin($0) ?? $0.lowercased() }
        let sameOrigin = origin == "http://\(host)"
        let allowed = origin.map(allowedOrigins.contains) ?? false
        if let origin, !sameOrigin, !allowed {
            return .refuse(status: 403, code: "origin-not-allowed",
                           message: "origin \(origin) may not use this node: start it with --allow-origin \(origin) to allow it")
        }
        if origin == nil, r.kind != .asset, r.fetchMode?.lowercased() != "navigate",
           let site = r.fetchSite?.lowercased(), site == "cross-site" || site == "same-site" {
            return .refuse(status: 403, code: "origin-not-allowed",
                           message: "a \(site) request without an Origin header (an <img>, <video> or form) may not use this node")
        }
        if r.kind == .statusPage, origin != nil, !sameOrigin {
            return .refuse(status: 403, code: "origin-not-allowed", message: "the status page is served only to itself")
        }
        let method = r.method.uppercased()
        let cors = allowed && !sameOrigin ? corsHeaders(origin!) : []
        if method == "OPTIONS" {
            return .preflight(headers: cors.isEmpty ? [Header("Allow", BrowserAccess.allowedMethods)] : cors + [
                Header("Access-Control-Allow-Methods", BrowserAccess.allowedMethods),
                Header("Access-Control-Allow-Headers", BrowserAccess.allowedHeaders),
                Header("Access-Control-Allow-Private-Network", "true"),
                Header("Access-Control-Max-Age", "600"),
            ])
        }
        if !["GET", "HEAD"].contains(method) {
            guard let presented = r.token, BrowserAccess.constantTimeEqual(presented, token) else {
                return .refuse(status: 401, code: r.token == nil ? "token-required" : "bad-token",
                               message: "starting, aborting, pinning and deleting need this node's token in \(BrowserAccess.tokenHeader) (`modelcache token` prints it)")
            }
        }
        return .allow(headers: cors)
    }

    func corsHeaders(_ origin: String) -> [Header] {
        [Header("Access-Control-Allow-Origin", origin), Header("Vary", "Origin"),
         Header("Access-Control-Expose-Headers", BrowserAccess.exposedHeaders)]
    }

    /// `scheme://host[:port]` in lower case, without a path or a default port; nil if it is not an http(s) origin.
    /// (`null`, sent by sandboxed frames and `file:` pages, is never allowed.)
    public static func normalizedOrigin(_ raw: String) -> String? {
        var s = raw.trimmingCharacters(in: .whitespaces).lowercased()
        while s.hasSuffix("/") { s.removeLast() }
        let scheme: String
        if s.hasPrefix("http://") { scheme = "http" } else if s.hasPrefix("https://") { scheme = "https" } else { return nil }
        let rest = s.dropFirst(scheme.count + 3)
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains("?"), !rest.contains("#") else { return nil }
        var hostPort = String(rest)
        if scheme == "http", hostPort.hasSuffix(":80") { hostPort.removeLast(3) }
        if scheme == "https", hostPort.hasSuffix(":443") { hostPort.removeLast(4) }
        return "\(scheme)://\(hostPort)"
    }

    /// Compares without stopping at the first difference, so timing tells nothing about the token.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }

    /// The token from `X-ModelCache-Token`, else from `Authorization: Bearer …`.
    public static func presentedToken(header: String?, authorization: String?) -> String? {
        if let header, !header.isEmpty { return header.trimmingCharacters(in: .whitespaces) }
        guard let a = authorization?.trimmingCharacters(in: .whitespaces), a.lowercased().hasPrefix("bearer ") else { return nil }
        return String(a.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    /// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (`::ffff:127.x.y.z`).
    public static func isLoopback(ip: String) -> Bool {
        let s = ip.lowercased()
        return s.hasPrefix("127.") || s == "::1" || s == "0:0:0:0:0:0:0:1" || s.hasPrefix("::ffff:127.")
    }
}
