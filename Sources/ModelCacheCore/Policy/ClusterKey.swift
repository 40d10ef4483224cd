import Crypto

/// A cluster's shared secret (`serve --cluster-key-file`, protocol/PROTOCOL.md §14) and what it signs: each request a
/// member sends to a peer, and the catalogue a member answers with. HMAC-SHA256 only; no other crypto.
///
/// Request signature: lowercase hex of HMAC-SHA256(key, "modelcache-cluster-v1\n" METHOD "\n" TARGET "\n" TIME "\n"
/// NONCE), where TARGET is the request line's path and query as sent, TIME decimal Unix seconds and NONCE 32
/// lowercase hex digits (16 random bytes). Answer signature: lowercase hex of HMAC-SHA256(key,
/// "modelcache-cluster-answer-v1\n" NONCE "\n" hex(SHA-256 of the body as sent)).
public struct ClusterKey: Sendable, Hashable {
    public static let minBytes = 16
    public static let maxBytes = 4096
    public static let timeHeader = "X-ModelCache-Cluster-Time"
    public static let nonceHeader = "X-ModelCache-Cluster-Nonce"
    public static let signatureHeader = "X-ModelCache-Cluster-Signature"
    public static let answerHeader = "X-ModelCache-Cluster-Answer"
    /// The JSON error code of a refused request (401).
    public static let refusalCode = "cluster-key-required"
    static let requestContext = "modelcache-cluster-v1"
    static let answerContext = "modelcache-cluster-answer-v1"
    public static let nonceLength = 32

    public let bytes: [UInt8]
    /// `ck=` in the TXT record: the first 8 bytes of SHA-256("modelcache-cluster-v1" + key), 16 lowercase hex digits.
    /// Names the cluster without revealing the key.
    public let fingerprint: String

    /// nil unless 16–4096 bytes.
    public init?(bytes: [UInt8]) {
        guard (Self.minBytes...Self.maxBytes).contains(bytes.count) else { return nil }
        self.bytes = bytes
        let digest = Array(SHA256.hash(data: Array(Self.requestContext.utf8) + bytes))
        self.fingerprint = Hex.encode(digest.prefix(8))
    }

    var symmetric: SymmetricKey { SymmetricKey(data: bytes) }

    /// The string a request signature covers.
    public static func signingString(method: String, target: String, time: Int64, nonce: String) -> String {
        [requestContext, method, target, String(time), nonce].joined(separator: "\n")
    }

    /// The three headers of a signed request, in order: time, nonce, signature.
    public func signRequest(method: String, target: String, time: Int64, nonce: String) -> [(String, String)] {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array(Self.signingString(method: method, target: target, time: time, nonce: nonce).utf8), using: symmetric)
        return [(Self.timeHeader, String(time)), (Self.nonceHeader, nonce), (Self.signatureHeader, Hex.encode(Array(mac)))]
    }

    /// Whether `signature` (hex) is the MAC of this request (compared in constant time).
    func validRequest(method: String, target: String, time: Int64, nonce: String, signature: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(
            signature, authenticating: Array(Self.signingString(method: method, target: target, time: time, nonce: nonce).utf8),
            using: symmetric)
    }

    static func answerString(nonce: String, body: [UInt8]) -> [UInt8] {
        Array("\(answerContext)\n\(nonce)\n\(Hex.encode(Array(SHA256.hash(data: body))))".utf8)
    }

    /// `X-ModelCache-Cluster-Answer` for a body answering the request that carried `nonce`.
    public func signAnswer(nonce: String, body: [UInt8]) -> String {
        Hex.encode(Array(HMAC<SHA256>.authenticationCode(for: Self.answerString(nonce: nonce, body: body), using: symmetric)))
    }

    /// Whether an answer's signature header proves the peer holds this key (constant-time comparison).
    public func validAnswer(_ header: String?, nonce: String, body: [UInt8]) -> Bool {
        guard let header, let mac = Hex.decode(header), mac.count == 32 else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Self.answerString(nonce: nonce, body: body), using: symmetric)
    }

    /// A fresh nonce: 16 random bytes as 32 lowercase hex digits.
    public static func randomNonce() -> String {
        var g = SystemRandomNumberGenerator()
        return randomNonce(using: &g)
    }

    public static func randomNonce<G: RandomNumberGenerator>(using g: inout G) -> String {
        Hex.encode((0..<16).map { _ in UInt8.random(in: 0...255, using: &g) })
    }

    /// Whether a node with fingerprint `ours` (nil: no key) uses a service that announces `theirs` (nil: no `ck=`):
    /// only the same cluster, so keyed and keyless nodes ignore each other.
    public static func sameCluster(ours: String?, theirs: String?) -> Bool { ours == theirs }

    /// Which requests need the key on a keyed node: the peer API (`/v1/…`, except the browser API `/v1/web/…`) from
    /// every address, loopback included; everything else (status page, `/v1/web/…`, Hub endpoint, `/metrics`) from
    /// non-loopback addresses only.
    public static func required(path: String, remoteIsLoopback: Bool) -> Bool {
        if !remoteIsLoopback { return true }
        return path.hasPrefix("/v1/") && !path.hasPrefix("/v1/web/") && path != "/v1/web"
    }
}

extension ClusterKey: CustomStringConvertible {
    /// Never the key itself: its fingerprint.
    public var description: String { "ClusterKey(ck=\(fingerprint))" }
}

/// Lowercase hex, both ways.
enum Hex {
    static let digits = Array("0123456789abcdef".utf8)

    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lowercase hex only (what the protocol writes); nil for anything else.
    static func decode(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = value(u[i]), let lo = value(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
