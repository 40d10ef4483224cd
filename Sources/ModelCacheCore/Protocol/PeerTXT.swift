/// The DNS-SD TXT record a node advertises with its `_modelcache._tcp` service.
///
/// Wire form, in this order (RFC 6763 §6: `txtvers` first, one `key=value` per string):
///
///     txtvers=1
///     pv=<peer protocol version, decimal>
///     id=<node id, 16 lowercase hex digits>
///     cv=<catalogue version, decimal UInt64>
///     ck=<cluster key fingerprint, 16 lowercase hex digits>   (only on a node with a cluster key)
///
/// The record stays small on purpose (well under 100 bytes): it only says who the node is and
/// which catalogue version it has; the catalogue itself is fetched over HTTP.
///
/// ``parse(_:)`` reads what arrives from the network and never traps: anything it cannot use
/// (missing or malformed keys, a different `txtvers`, duplicated keys, strings longer than a
/// DNS character-string, non-UTF-8 bytes in our keys) makes it return `nil`. Unknown keys
/// are ignored so later versions can add some.
public struct PeerTXT: Sendable, Hashable {
    /// The TXT format version this code writes and reads (`txtvers`).
    public static let formatVersion = 1
    /// The peer protocol version this build speaks (`pv`).
    public static let currentProtocolVersion: UInt16 = 1
    /// Longest string a DNS TXT record can carry (one length byte).
    public static let maxStringLength = 255

    /// The peer protocol version the node speaks (`pv`).
    public let protocolVersion: UInt16
    /// The node's identity: exactly 16 lowercase hexadecimal digits (`id`).
    public let nodeID: String
    /// The version of the node's catalogue; bumped whenever its content changes (`cv`).
    public var catalogueVersion: UInt64
    /// The node's cluster key fingerprint (`ck`, `ClusterKey.fingerprint`); nil for a node without a key.
    public var clusterFingerprint: String?

    /// Returns `nil` when `nodeID` (or a given `clusterFingerprint`) is not 16 lowercase hexadecimal digits.
    public init?(nodeID: String, catalogueVersion: UInt64, protocolVersion: UInt16 = PeerTXT.currentProtocolVersion,
                 clusterFingerprint: String? = nil) {
        guard Self.isValidNodeID(nodeID) else { return nil }
        if let clusterFingerprint { guard Self.isValidNodeID(clusterFingerprint) else { return nil } }
        self.nodeID = nodeID
        self.catalogueVersion = catalogueVersion
        self.protocolVersion = protocolVersion
        self.clusterFingerprint = clusterFingerprint
    }

    /// `true` for exactly 16 lowercase hexadecimal digits.
    public static func isValidNodeID(_ s: String) -> Bool {
        let u = s.utf8
        return u.count == 16 && u.allSatisfy(isLowerHex)
    }

    /// A fresh random node id (16 lowercase hex digits).
    public static func randomNodeID() -> String {
        var g = SystemRandomNumberGenerator()
        return randomNodeID(using: &g)
    }

    /// A node id drawn from `generator` (inject a seeded one in tests).
    public static func randomNodeID<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let v = generator.next() as UInt64
        let hex = String(v, radix: 16)
        return String(repeating: "0", count: 16 - hex.utf8.count) + hex
    }

    /// The TXT strings in wire order, `txtvers` first. Each is at most 255 bytes.
    public func encode() -> [String] {
        [
            "txtvers=\(Self.formatVersion)",
            "pv=\(protocolVersion)",
            "id=\(nodeID)",
            "cv=\(catalogueVersion)",
        ] + (clusterFingerprint.map { ["ck=\($0)"] } ?? [])
    }

    /// Reads a TXT record given as its strings (each the bytes of one DNS character-string).
    ///
    /// Order does not matter (avahi hands the strings over in reverse wire order). Keys are
    /// compared case-insensitively (RFC 6763 §6.4). Returns `nil` when the record is unusable.
    public static func parse(_ strings: [[UInt8]]) -> PeerTXT? {
        // A valid record has only a few strings; a flood of them is not worth reading.
        guard strings.count <= 64 else { return nil }
        var txtvers: [UInt8]?
        var pv: [UInt8]?
        var id: [UInt8]?
        var cv: [UInt8]?
        var ck: [UInt8]?
        for s in strings {
            if s.isEmpty { continue }  // an empty string is a legal, empty TXT record
            guard s.count <= maxStringLength else { return nil }
            let eq = s.firstIndex(of: UInt8(ascii: "="))
            let key = s[..<(eq ?? s.endIndex)]
            let value: [UInt8]? = eq.map { Array(s[s.index(after: $0)...]) }
            guard let known = knownKey(key) else { continue }  // unknown (or non-ASCII) key: ignore
            // Ours must carry a value; a boolean attribute ("id" with no "=") is unusable.
            guard let value else { return nil }
            // A duplicated key makes the record ambiguous: avahi's string order is not the wire
            // order, so "first one wins" (RFC 6763 §6.4) cannot be applied reliably. Reject.
            switch known {
            case .txtvers: guard txtvers == nil else { return nil }; txtvers = value
            case .pv: guard pv == nil else { return nil }; pv = value
            case .id: guard id == nil else { return nil }; id = value
            case .cv: guard cv == nil else { return nil }; cv = value
            case .ck: guard ck == nil else { return nil }; ck = value
            }
        }
        guard let txtvers, let pv, let id, let cv else { return nil }
        guard decimal(txtvers, maxDigits: 9) == UInt64(formatVersion) else { return nil }
        guard let pvNumber = decimal(pv, maxDigits: 5), let protocolVersion = UInt16(exactly: pvNumber) else { return nil }
        guard let catalogueVersion = decimal(cv, maxDigits: 20) else { return nil }
        guard id.count == 16, id.allSatisfy(isLowerHex) else { return nil }
        if let ck { guard ck.count == 16, ck.allSatisfy(isLowerHex) else { return nil } }
        // All bytes are ASCII hex digits here, so this decoding cannot fail or alter anything.
        return PeerTXT(nodeID: String(decoding: id, as: UTF8.self), catalogueVersion: catalogueVersion, protocolVersion: protocolVersion,
                       clusterFingerprint: ck.map { String(decoding: $0, as: UTF8.self) })
    }

    private enum Key { case txtvers, pv, id, cv, ck }

    private static func knownKey(_ key: ArraySlice<UInt8>) -> Key? {
        guard key.count <= 7 else { return nil }
        // ASCII-lowercase byte by byte; any non-ASCII byte simply fails to match.
        let lower = key.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
        switch lower {
        case Array("txtvers".utf8): return .txtvers
        case Array("pv".utf8): return .pv
        case Array("id".utf8): return .id
        case Array("cv".utf8): return .cv
        case Array("ck".utf8): return .ck
        default: return nil
        }
    }

    /// Plain decimal digits only (no sign, no spaces), at most `maxDigits` of them, no overflow.
    private static func decimal(_ bytes: [UInt8], maxDigits: Int) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= maxDigits else { return nil }
        var v: UInt64 = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            v = a
        }
        return v
    }

    private static func isLowerHex(_ b: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b)
    }
}

extension PeerTXT: CustomStringConvertible {
    public var description: String { encode().joined(separator: " ") }
}
