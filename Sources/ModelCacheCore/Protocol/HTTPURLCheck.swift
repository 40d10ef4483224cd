import Foundation

/// What makes a URL safe to hand to the HTTP client: an absolute http(s) URL with a host and, when it names one, a
/// port in 1...65535. AsyncHTTPClient traps on an IP literal with a port above 65535, so every URL from the command
/// line, an origin's `Location` or a stored file passes this check first.
public enum HTTPURLCheck {
    /// nil when the URL is fine, else what is wrong with it (one short phrase).
    public static func problem(_ url: String) -> String? {
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased() else { return "not a URL" }
        guard scheme == "http" || scheme == "https" else { return "scheme '\(scheme)' is not http or https" }
        guard let host = u.host, !host.isEmpty else { return "no host" }
        if let port = u.port, !(1...65535).contains(port) { return "port \(port) is outside 1...65535" }
        // A port too large for `URL.port` (an Int) shows only in the authority text: check it by hand.
        if let authority = authorityPort(url), !authority.isEmpty {
            guard let p = Int(authority), (1...65535).contains(p) else { return "port \(authority) is outside 1...65535" }
        }
        return nil
    }

    /// The digits after the last `:` of the authority (after any `]` of an IPv6 literal), if any.
    static func authorityPort(_ url: String) -> Substring? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? authority
        let afterHost = hostPort.lastIndex(of: "]").map { hostPort[hostPort.index(after: $0)...] } ?? hostPort
        guard let colon = afterHost.lastIndex(of: ":") else { return nil }
        return afterHost[afterHost.index(after: colon)...]
    }
}
