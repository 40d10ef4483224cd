import Crypto

/// A blob's identity: the SHA-256 of its bytes, as 64 lowercase hex digits.
public struct BlobDigest: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let hex: String

    /// Accepts 64 hex digits (either case; stored lowercase), optionally prefixed `sha256:`.
    public init(validating text: String) throws(ModelCacheError) {
        var t = Substring(text)
        if t.hasPrefix("sha256:") { t = t.dropFirst(7) }
        guard let hex = BlobDigest.normalize(t) else { throw .malformedDigest(text) }
        self.hex = hex
    }

    /// Returns nil when the text is not 64 hex digits (used for headers such as ETag that may hold other values).
    public init?(ifValid text: some StringProtocol) {
        guard let hex = BlobDigest.normalize(Substring(text)) else { return nil }
        self.hex = hex
    }

    public init(_ digest: SHA256.Digest) {
        self.hex = digest.hexString
    }

    public init(raw bytes: some Sequence<UInt8>) throws(ModelCacheError) {
        let array = Array(bytes)
        guard array.count == 32 else { throw .malformedDigest("\(array.count) raw bytes") }
        self.hex = array.hexString
    }

    public static func of(_ bytes: some DataProtocolLike) -> BlobDigest {
        BlobDigest(SHA256.hash(data: bytes.bytes))
    }

    public var description: String { hex }
    public var short: String { String(hex.prefix(12)) }
    public static func < (a: Self, b: Self) -> Bool { a.hex < b.hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try BlobDigest(validating: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }

    static func normalize(_ t: Substring) -> String? {
        guard t.utf8.count == 64 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(64)
        for c in t.utf8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): out.append(c)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): out.append(c + 32)
            default: return nil
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Tiny bridge so callers can hash `[UInt8]` or `ArraySlice<UInt8>` without Foundation.
public protocol DataProtocolLike { var bytes: [UInt8] { get } }
extension Array: DataProtocolLike where Element == UInt8 { public var bytes: [UInt8] { self } }
extension ArraySlice: DataProtocolLike where Element == UInt8 { public var bytes: [UInt8] { Array(self) } }

extension Sequence where Element == UInt8 {
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in self {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension SHA256.Digest {
    public var hexString: String { self.withUnsafeBytes { Array($0).hexString } }
}
