import Foundation

/// Keeps the client on plain HTTP through the node (docs: hf-client sheet §5). A client that sees Xet metadata
/// fetches the bytes from Hugging Face's CAS itself, bypassing the node (and failing offline), so the node removes
/// every trace of it: the `X-Xet-*` headers, the `xet-auth` / `xet-reconstruction-info` entries of `Link`, and
/// `xetHash` in tree listings (with only the headers gone, `snapshot_download` still goes Xet from the listing).
public enum HubXet {
    /// The headers without any Xet metadata; other `Link` entries are kept.
    public static func strip(headers: [(String, String)]) -> [(String, String)] {
        headers.compactMap { name, value in
            let n = name.lowercased()
            if n.hasPrefix("x-xet-") { return nil }
            if n == "link" {
                let kept = linkEntries(value).filter { entry in
                    let rel = relation(of: entry)
                    return rel != "xet-auth" && rel != "xet-reconstruction-info"
                }
                return kept.isEmpty ? nil : (name, kept.joined(separator: ", "))
            }
            return (name, value)
        }
    }

    /// JSON with every `xetHash` key removed, at any depth; nil when the bytes are not JSON.
    public static func strip(json: [UInt8]) -> [UInt8]? {
        guard let value = try? JSONSerialization.jsonObject(with: Data(json), options: [.fragmentsAllowed]) else { return nil }
        let cleaned = removeKey("xetHash", from: value)
        guard let out = try? JSONSerialization.data(withJSONObject: cleaned, options: [.fragmentsAllowed, .withoutEscapingSlashes]) else { return nil }
        return Array(out)
    }

    static func removeKey(_ key: String, from value: Any) -> Any {
        if let dict = value as? [String: Any] {
            var out: [String: Any] = [:]
            for (k, v) in dict where k != key { out[k] = removeKey(key, from: v) }
            return out
        }
        if let array = value as? [Any] { return array.map { removeKey(key, from: $0) } }
        return value
    }

    /// `Link: <u1>; rel="next", <u2>; rel="x"` → its entries (commas inside `<…>` kept).
    public static func linkEntries(_ value: String) -> [String] {
        var entries: [String] = []
        var current = ""
        var inURL = false
        for ch in value {
            if ch == "<" { inURL = true } else if ch == ">" { inURL = false }
            if ch == "," && !inURL {
                entries.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(ch)
            }
        }
        let last = current.trimmingCharacters(in: .whitespaces)
        if !last.isEmpty { entries.append(last) }
        return entries
    }

    static func relation(of entry: String) -> String? {
        for param in entry.split(separator: ";").dropFirst() {
            let kv = param.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2, kv[0].lowercased() == "rel" { return kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return nil
    }

    /// The URL of the `rel="next"` entry of a `Link` header (pagination), if any.
    public static func nextLink(_ value: String?) -> String? {
        guard let value else { return nil }
        for entry in linkEntries(value) where relation(of: entry) == "next" {
            guard let open = entry.firstIndex(of: "<"), let close = entry.firstIndex(of: ">"), open < close else { continue }
            return String(entry[entry.index(after: open)..<close])
        }
        return nil
    }
}
