/// One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1): `Bearer realm="…",service="…",scope="…"` from a
/// registry that wants a token, `Basic realm="…"` from one that wants a password. Parameter names are lower-cased;
/// quoted values are unescaped. A malformed header gives the challenges before the fault.
public struct AuthChallenge: Sendable, Equatable {
    public var scheme: String
    public var params: [String: String]

    public init(scheme: String, params: [String: String]) {
        self.scheme = scheme
        self.params = params
    }

    public var isBearer: Bool { scheme == "bearer" }
    public var realm: String? { params["realm"] }

    static let maxLength = 8192

    public static func parse(_ header: String) -> [AuthChallenge] {
        let b = Array(header.utf8.prefix(maxLength))
        var i = 0
        var out: [AuthChallenge] = []
        func skipSpace() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 } }
        func token() -> String? {
            let start = i
            while i < b.count, isTokenChar(b[i]) { i += 1 }
            return i > start ? String(decoding: b[start..<i], as: UTF8.self) : nil
        }
        while i < b.count {
            skipSpace()
            while i < b.count, b[i] == UInt8(ascii: ",") { i += 1; skipSpace() }
            guard let scheme = token() else { return out }
            var challenge = AuthChallenge(scheme: scheme.lowercased(), params: [:])
            // parameters: name = value, separated by commas, until the next scheme (a token not followed by '=')
            while true {
                skipSpace()
                let mark = i
                guard let name = token() else { break }
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "=") else { i = mark; break }  // the next challenge's scheme
                i += 1
                skipSpace()
                var value: String
                if i < b.count, b[i] == UInt8(ascii: "\"") {
                    i += 1
                    var v: [UInt8] = []
                    var closed = false
                    while i < b.count {
                        if b[i] == UInt8(ascii: "\\"), i + 1 < b.count { v.append(b[i + 1]); i += 2; continue }
                        if b[i] == UInt8(ascii: "\"") { i += 1; closed = true; break }
                        v.append(b[i])
                        i += 1
                    }
                    guard closed else { out.append(challenge); return out }
                    value = String(decoding: v, as: UTF8.self)
                } else {
                    // An unquoted value: a token by the RFC; any visible bytes but ',' here (servers write bare URLs).
                    let start = i
                    while i < b.count, b[i] > 0x20, b[i] < 0x7f, b[i] != UInt8(ascii: ",") { i += 1 }
                    guard i > start else { out.append(challenge); return out }
                    value = String(decoding: b[start..<i], as: UTF8.self)
                }
                if challenge.params[name.lowercased()] == nil { challenge.params[name.lowercased()] = value }
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: ",") { i += 1 } else { break }
            }
            out.append(challenge)
            skipSpace()
            if i < b.count, !isTokenChar(b[i]), b[i] != UInt8(ascii: ",") { return out }
        }
        return out
    }

    /// RFC 9110 tchar (and '/' so that token68 values such as base64 pass as one word).
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"), UInt8(ascii: "/"): true
        default: false
        }
    }

    /// The token endpoint's URL for an anonymous (or credentialed) token: `realm?service=…&scope=…`. nil when the
    /// realm is not an http(s) URL.
    public func tokenURL(scope: String?) -> String? {
        guard isBearer, let realm, HTTPURLCheck.problem(realm) == nil, !realm.contains("#") else { return nil }
        var query: [String] = []
        if let s = params["service"] { query.append("service=" + AuthChallenge.encode(s)) }
        if let s = scope ?? params["scope"] { query.append("scope=" + AuthChallenge.encode(s)) }
        guard !query.isEmpty else { return realm }
        return realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
    }

    static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if RegistryName.isAlnum(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b) || b == UInt8(ascii: "-")
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    /// The pull scope of a repository, as registries name it.
    public static func pullScope(_ repository: String) -> String { "repository:\(repository):pull" }
}
