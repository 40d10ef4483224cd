import Foundation

/// What `modelcache list` prints: a header, the blobs (Hugging Face files grouped by repository), the partial
/// downloads, and a total line. Pure: the caller gives the rows.
public enum CacheListing {
    public struct Blob: Sendable, Equatable {
        public var sha256: String
        public var size: Int64
        public var lastUsed: Date
        public var pinned: Bool
        public var urls: [String]
        public var source: String?

        public init(sha256: String, size: Int64, lastUsed: Date, pinned: Bool, urls: [String], source: String?) {
            self.sha256 = sha256
            self.size = size
            self.lastUsed = lastUsed
            self.pinned = pinned
            self.urls = urls
            self.source = source
        }
    }

    public struct Partial: Sendable, Equatable, Codable {
        public var url: String
        public var size: Int64
        public var verifiedBytes: Int64
        public var diskBytes: Int64
        public var inUse: Bool

        public init(url: String, size: Int64, verifiedBytes: Int64, diskBytes: Int64, inUse: Bool) {
            self.url = url
            self.size = size
            self.verifiedBytes = verifiedBytes
            self.diskBytes = diskBytes
            self.inUse = inUse
        }
    }

    /// Digits of a digest shown (a unique prefix is enough for `rm`, `pin`, `unpin`).
    public static let shortDigest = 12

    public static func lines(blobs: [Blob], partials: [Partial], root: String, timeZone: TimeZone = .current) -> [String] {
        var out: [String] = []
        let date = DateFormatter()
        date.locale = Locale(identifier: "en_US_POSIX")
        date.timeZone = timeZone
        date.dateFormat = "yyyy-MM-dd HH:mm"
        func row(_ b: Blob, name: String) -> String {
            let digest = String(b.sha256.prefix(shortDigest))
            let size = ProgressText.bytes(b.size).padding(toLength: 10, withPad: " ", startingAt: 0)
            let source = (b.source ?? "no-url").padding(toLength: 14, withPad: " ", startingAt: 0)
            return "\(digest)  \(size)  \(date.string(from: b.lastUsed))  \(source) \(b.pinned ? "pinned " : "")\(name)"
        }
        if blobs.isEmpty && partials.isEmpty { return ["(the cache at \(root) is empty)"] }
        if !blobs.isEmpty {
            out.append("SHA256        SIZE        LAST USED         SOURCE         FILE")
            var groups: [String: [(Blob, String)]] = [:]
            var others: [Blob] = []
            for b in blobs {
                if let (repo, file) = b.urls.lazy.compactMap(ProgressLine.hubFile(url:)).first {
                    groups[repo.kind.resolvePrefix + repo.id, default: []].append((b, file))
                } else {
                    others.append(b)
                }
            }
            for name in groups.keys.sorted() {
                let files = groups[name] ?? []
                let bytes = files.reduce(Int64(0)) { $0 + $1.0.size }
                out.append("\(name)  (Hugging Face, \(files.count) file\(files.count == 1 ? "" : "s"), \(ProgressText.bytes(bytes)))")
                for (b, file) in files.sorted(by: { $0.1 < $1.1 }) { out.append(row(b, name: file)) }
            }
            if !groups.isEmpty && !others.isEmpty { out.append("other files") }
            for b in others {
                out.append(row(b, name: b.urls.first ?? "(imported, no URL)"))
                for u in b.urls.dropFirst() { out.append(String(repeating: " ", count: 64) + u) }
            }
        }
        if !partials.isEmpty {
            out.append("partial downloads ('modelcache prune' removes those not in use)")
            for p in partials {
                let state = p.inUse ? "  [downloading]" : ""
                out.append("  \(ProgressText.bytes(p.verifiedBytes)) of \(ProgressText.bytes(p.size)) verified, \(ProgressText.bytes(p.diskBytes)) on disk  \(p.url)\(state)")
            }
        }
        let total = blobs.reduce(Int64(0)) { $0 + $1.size }
        let pinned = blobs.filter(\.pinned).count
        var line = "total: \(blobs.count) blob\(blobs.count == 1 ? "" : "s"), \(ProgressText.bytes(total))"
        if pinned > 0 { line += " (\(pinned) pinned)" }
        if !partials.isEmpty {
            line += " · \(partials.count) partial download\(partials.count == 1 ? "" : "s"), \(ProgressText.bytes(partials.reduce(0) { $0 + $1.diskBytes })) on disk"
        }
        out.append(line)
        return out
    }
}
