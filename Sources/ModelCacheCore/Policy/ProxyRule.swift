import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which origin requests go through a forward proxy (a site cache such as Squid), by curl's rules: `http_proxy` for
/// http:// URLs and `https_proxy` for https:// URLs (lower case first, then `HTTP_PROXY`/`HTTPS_PROXY`; an empty
/// value is unset), `no_proxy`/`NO_PROXY` for the hosts that are reached directly; `serve --origin-proxy URL` sets
/// the proxy for both schemes (NO_PROXY still applies, as with `curl -x`), `--origin-proxy none` ignores the
/// environment. Only origin requests ask the rule: LAN peers are always reached directly.
public struct ProxyRule: Sendable, Equatable, CustomStringConvertible {
    /// A forward proxy: an http:// URL's host and port (curl's default port, 1080, when it names none).
    public struct Server: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        /// `user:password` from the URL (percent-decoded), sent as `Proxy-Authorization: Basic`.
        public var credentials: String?

        public init(host: String, port: Int, credentials: String? = nil) {
            self.host = host
            self.port = port
            self.credentials = credentials
        }

        /// The proxy's URL without its credentials (for logs).
        public var description: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

        /// The `Proxy-Authorization` header value, if the URL has credentials.
        public var authorization: String? { credentials.map { "Basic " + Data($0.utf8).base64EncodedString() } }

        public static let defaultPort = 1080

        /// Parses `http://[user:password@]host[:port][/]` (a bare `host:port` is taken as http://). `name` is the
        /// variable or option the text came from, for the error.
        public init(parsing text: String, name: String) throws(ModelCacheError) {
            let t = text.trimmingCharacters(in: .whitespaces)
            let withScheme = t.contains("://") ? t : "http://" + t
            let advice = "give http://HOST:PORT (a Squid or other forward proxy), or use --origin-proxy none"
            guard let c = URLComponents(string: withScheme), let scheme = c.scheme?.lowercased() else {
                throw .invalidArgument("\(name) '\(text)' is not a proxy URL: \(advice)")
            }
            guard scheme == "http" else {
                throw .invalidArgument("\(name) '\(text)': \(scheme):// proxies are not supported: \(advice)")
            }
            guard HTTPURLCheck.problem(withScheme) == nil, var host = c.host, !host.isEmpty else {
                throw .invalidArgument("\(name) '\(text)' is not a proxy URL (no host, or a port outside 1...65535): \(advice)")
            }
            guard c.path.isEmpty || c.path == "/", c.query == nil, c.fragment == nil else {
                throw .invalidArgument("\(name) '\(text)' has a path: \(advice)")
            }
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.host = host.lowercased()
            self.port = c.port ?? Server.defaultPort
            if let user = c.user {
                credentials = user + ":" + (c.password ?? "")
            }
        }
    }

    /// The proxy for http:// origins, nil = direct.
    public var http: Server?
    /// The proxy for https:// origins (a CONNECT tunnel through it), nil = direct.
    public var https: Server?
    /// Hosts reached directly whatever the proxies.
    public var noProxy: NoProxy

    public init(http: Server? = nil, https: Server? = nil, noProxy: NoProxy = NoProxy()) {
        self.http = http
        self.https = https
        self.noProxy = noProxy
    }

    /// Every request direct.
    public static let direct = ProxyRule()

    public var isDirect: Bool { http == nil && https == nil }

    /// The proxy a request to `url` goes through; nil = connect to the origin directly (no proxy for its scheme,
    /// NO_PROXY names its host, or the URL is not http(s)).
    public func server(for url: String) -> Server? {
        guard !isDirect, let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(),
              var host = c.host, !host.isEmpty else { return nil }
        let server: Server?
        switch scheme {
        case "http": server = http
        case "https": server = https
        default: return nil
        }
        guard let server else { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = c.port ?? (scheme == "https" ? 443 : 80)
        return noProxy.matches(host: host, port: port) ? nil : server
    }

    /// The rule for this process: `option` is `--origin-proxy` (nil when not given), `environment` the process's.
    public static func resolve(option: String?, environment: [String: String]) throws(ModelCacheError) -> ProxyRule {
        func value(_ names: String...) -> (name: String, value: String)? {
            for n in names { if let v = environment[n], !v.trimmingCharacters(in: .whitespaces).isEmpty { return (n, v) } }
            return nil
        }
        let noProxy = NoProxy(parsing: value("no_proxy", "NO_PROXY")?.value ?? "")
        if let option {
            if option.trimmingCharacters(in: .whitespaces).lowercased() == "none" { return .direct }
            let s = try Server(parsing: option, name: "--origin-proxy")
            return ProxyRule(http: s, https: s, noProxy: noProxy)
        }
        var rule = ProxyRule(noProxy: noProxy)
        if let h = value("http_proxy", "HTTP_PROXY") { rule.http = try Server(parsing: h.value, name: h.name) }
        if let h = value("https_proxy", "HTTPS_PROXY") { rule.https = try Server(parsing: h.value, name: h.name) }
        return rule
    }

    public var description: String {
        if isDirect { return "direct" }
        var parts = ["http: \(http.map(\.description) ?? "direct")", "https: \(https.map(\.description) ?? "direct")"]
        if !noProxy.isEmpty { parts.append("no_proxy: \(noProxy)") }
        return parts.joined(separator: ", ")
    }
}

/// `NO_PROXY` as curl reads it: a comma- (or space-) separated list of `*` (every host), host names that match
/// themselves and their subdomains (a leading `.` or `*.` is dropped: `.example.com` matches `example.com` and
/// `a.example.com`), IP addresses, IP networks (`10.0.0.0/8`, `fd00::/8`), each optionally with `:PORT` (IPv6 as
/// `[addr]:PORT`) to match only that port. Entries it cannot read are ignored, as curl does.
public struct NoProxy: Sendable, Equatable, CustomStringConvertible {
    enum Entry: Sendable, Equatable {
        case all
        case domain(String, port: Int?)
        /// Address bytes (4 or 16), prefix length in bits.
        case network([UInt8], prefix: Int, port: Int?)
    }

    var entries: [Entry] = []

    public init() {}

    public init(parsing text: String) {
        let separators = CharacterSet(charactersIn: ", \t")
        entries = text.components(separatedBy: separators).compactMap(NoProxy.entry)
    }

    public var isEmpty: Bool { entries.isEmpty }

    static func entry(_ raw: String) -> Entry? {
        var t = raw.lowercased()
        guard !t.isEmpty, t.utf8.count <= 255 else { return nil }
        if t == "*" { return .all }
        var port: Int? = nil
        if t.hasPrefix("["), let close = t.firstIndex(of: "]") {
            let after = t[t.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            } else if !after.isEmpty, !after.hasPrefix("/") {
                return nil
            }
            t = String(t[t.index(after: t.startIndex)..<close]) + (after.hasPrefix("/") ? String(after) : "")
        } else if t.filter({ $0 == ":" }).count == 1, let colon = t.firstIndex(of: ":") {
            guard let p = Int(t[t.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            t = String(t[..<colon])
        }
        if let slash = t.firstIndex(of: "/") {
            guard let bytes = NoProxy.address(String(t[..<slash])), let bits = Int(t[t.index(after: slash)...]),
                  (0...bytes.count * 8).contains(bits) else { return nil }
            return .network(bytes, prefix: bits, port: port)
        }
        if let bytes = NoProxy.address(t) { return .network(bytes, prefix: bytes.count * 8, port: port) }
        if t.hasPrefix("*.") { t.removeFirst(2) }
        while t.hasPrefix(".") { t.removeFirst() }
        while t.hasSuffix(".") { t.removeLast() }
        guard !t.isEmpty, !t.contains("*") else { return nil }
        return .domain(t, port: port)
    }

    /// Whether a request to `host` (a name or an IP literal without brackets) on `port` goes direct.
    public func matches(host: String, port: Int) -> Bool {
        var h = host.lowercased()
        while h.hasSuffix(".") { h.removeLast() }
        let ip = NoProxy.address(h)
        for e in entries {
            switch e {
            case .all:
                return true
            case .domain(let d, let p):
                guard ip == nil, p == nil || p == port else { continue }
                if h == d || h.hasSuffix("." + d) { return true }
            case .network(let net, let bits, let p):
                guard let ip, ip.count == net.count, p == nil || p == port else { continue }
                if NoProxy.prefix(ip, equals: net, bits: bits) { return true }
            }
        }
        return false
    }

    /// The bytes of an IPv4 (4) or IPv6 (16) literal, nil for anything else.
    static func address(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count < 64 else { return nil }
        var v4 = in_addr()
        if text.contains("."), !text.contains(":"), inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if text.contains(":"), inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    static func text(_ bytes: [UInt8]) -> String {
        var out = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { inet_ntop(family, b.baseAddress, $0.baseAddress, 64) != nil } }
        return ok ? String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }

    static func prefix(_ a: [UInt8], equals b: [UInt8], bits: Int) -> Bool {
        var left = bits
        for i in 0..<min(a.count, b.count) where left > 0 {
            let take = min(8, left)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if a[i] & mask != b[i] & mask { return false }
            left -= take
        }
        return true
    }

    public var description: String {
        entries.map { e -> String in
            switch e {
            case .all: return "*"
            case .domain(let d, let p): return p.map { "\(d):\($0)" } ?? d
            case .network(let n, let bits, let p):
                let text = NoProxy.text(n)
                return (n.count == 16 && p != nil ? "[\(text)]" : text) + "/\(bits)" + (p.map { ":\($0)" } ?? "")
            }
        }.joined(separator: ",")
    }
}
