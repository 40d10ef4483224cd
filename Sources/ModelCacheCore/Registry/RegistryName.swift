/// Repository names and references of the OCI distribution API, checked with the spec's grammar (protocol §16):
///
///     name      [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*   (at most 255 bytes)
///     tag       [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
///     digest    sha256:[a-f0-9]{64}   (the only algorithm a node serves: the cache names blobs by sha256)
///
/// A checked name has no `..`, no empty component and no character outside `[a-z0-9._/-]`: it never becomes a path.
public enum RegistryName {
    public static let maxLength = 255

    public static func isValid(name: some StringProtocol) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= maxLength else { return false }
        return bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).allSatisfy(isComponent)
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isComponent(_ c: ArraySlice<UInt8>) -> Bool {
        guard let first = c.first, let last = c.last, isAlnum(first), isAlnum(last) else { return false }
        var i = c.startIndex
        while i < c.endIndex {
            if isAlnum(c[i]) { i += 1; continue }
            // a separator: ".", "_", "__" or one or more "-", then an alphanumeric
            var j = i
            switch c[i] {
            case UInt8(ascii: "."): j += 1
            case UInt8(ascii: "_"): j += (j + 1 < c.endIndex && c[j + 1] == UInt8(ascii: "_")) ? 2 : 1
            case UInt8(ascii: "-"): while j < c.endIndex && c[j] == UInt8(ascii: "-") { j += 1 }
            default: return false
            }
            guard j < c.endIndex, isAlnum(c[j]) else { return false }
            i = j
        }
        return true
    }

    static func isAlnum(_ b: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
    }

    public static func isValid(tag: some StringProtocol) -> Bool {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first, bytes.count <= 128 else { return false }
        func word(_ b: UInt8) -> Bool {
            isAlnum(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b) || b == UInt8(ascii: "_")
        }
        return word(first) && bytes.dropFirst().allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// `sha256:` and 64 lowercase hex digits (what the spec and the registries write); nil for anything else.
    public static func digest(_ s: some StringProtocol) -> BlobDigest? {
        guard s.hasPrefix("sha256:") else { return nil }
        let hex = s.dropFirst(7)
        guard hex.utf8.allSatisfy({ isAlnum($0) }), let d = BlobDigest(ifValid: hex), d.hex == String(hex) else { return nil }
        return d
    }
}

/// What a manifest request names: a tag (moves) or a digest (never does).
public enum RegistryReference: Sendable, Hashable, CustomStringConvertible {
    case tag(String)
    case digest(BlobDigest)

    public init?(parsing s: some StringProtocol) {
        if let d = RegistryName.digest(s) { self = .digest(d); return }
        guard RegistryName.isValid(tag: s) else { return nil }
        self = .tag(String(s))
    }

    public var description: String {
        switch self {
        case .tag(let t): t
        case .digest(let d): "sha256:" + d.hex
        }
    }
}
