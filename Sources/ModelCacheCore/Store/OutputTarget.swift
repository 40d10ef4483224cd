/// Where `fetch -o` puts the file (pure).
public enum OutputTarget {
    /// The last path component of a URL as a safe file name: percent-decoded, never empty, `.` or `..`, never with a
    /// `/` or a NUL, at most 255 bytes. Nil when the URL has no usable name (then the user must give a file name).
    public static func fileName(fromURL url: String) -> String? {
        var rest = Substring(url)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        if let cut = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<cut] }
        guard let slash = rest.firstIndex(of: "/") else { return nil }  // no path after the host
        let path = rest[slash...]
        guard let last = path.split(separator: "/", omittingEmptySubsequences: true).last else { return nil }
        let decoded = percentDecoded(String(last)) ?? String(last)
        guard !decoded.isEmpty, decoded != ".", decoded != "..", !decoded.contains("/"), !decoded.contains("\0"),
              decoded.utf8.count <= 255 else { return nil }
        return decoded
    }

    /// Where the file goes: `output` itself, or `output/<name from the URL>` when `output` ends with `/` or is an
    /// existing folder. Nil when a folder is meant but the URL has no usable name.
    public static func destination(output: String, isExistingDirectory: Bool, url: String) -> String? {
        guard output.hasSuffix("/") || isExistingDirectory else { return output }
        guard let name = fileName(fromURL: url) else { return nil }
        return (output.hasSuffix("/") ? output : output + "/") + name
    }

    static func percentDecoded(_ s: String) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%") {
                guard it.count >= 2, let h = hex(it[it.startIndex]), let l = hex(it[it.startIndex + 1]) else { return nil }
                bytes.append(h << 4 | l)
                it = it.dropFirst(2)
            } else { bytes.append(c) }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
