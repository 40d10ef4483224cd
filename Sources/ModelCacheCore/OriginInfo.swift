import Foundation

/// What the origin said about a URL, gathered over the redirect hops of a HEAD.
public struct OriginInfo: Sendable, Hashable, Codable {
    public var requestedURL: String
    /// The URL to send Range GETs to (the last hop: a CDN for Hugging Face `resolve` URLs).
    public var finalURL: String
    public var size: Int64?
    public var etag: String?
    public var lastModified: String?
    public var acceptsRanges: Bool
    /// A sha256 the origin vouched for: `X-Linked-Etag` (Hugging Face LFS), `Repr-Digest: sha-256=:…:` (RFC 9530),
    /// or a 64-hex `ETag` on a hop that also sent `X-Linked-Size` / `X-Repo-Commit` (the Hub's own answers).
    public var digest: BlobDigest?

    public init(requestedURL: String, finalURL: String, size: Int64?, etag: String?, lastModified: String?,
                acceptsRanges: Bool, digest: BlobDigest?) {
        self.requestedURL = requestedURL
        self.finalURL = finalURL
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.acceptsRanges = acceptsRanges
        self.digest = digest
    }

    /// One response in a redirect chain: its status and headers (names compared case-insensitively).
    public struct Hop: Sendable {
        public var url: String
        public var status: Int
        public var headers: [(String, String)]
        public init(url: String, status: Int, headers: [(String, String)]) {
            self.url = url
            self.status = status
            self.headers = headers
        }
        public func first(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
        }
    }

    /// Builds the info from every hop (the first may be a 302 carrying `X-Linked-Etag`, the last is the 200).
    public static func from(hops: [Hop]) -> OriginInfo {
        guard let last = hops.last else {
            return OriginInfo(requestedURL: "", finalURL: "", size: nil, etag: nil, lastModified: nil, acceptsRanges: false, digest: nil)
        }
        var digest: BlobDigest? = nil
        var linkedSize: Int64? = nil
        for hop in hops {
            if digest == nil, let v = hop.first("X-Linked-Etag"), let d = BlobDigest(ifValid: normalizeETag(v)) {
                digest = d
            }
            if digest == nil, let v = hop.first("Repr-Digest"), let d = parseReprDigest(v) { digest = d }
            if linkedSize == nil, let v = hop.first("X-Linked-Size"), let n = Int64(v), n >= 0 { linkedSize = n }
        }
        var size = linkedSize
        if size == nil, let v = last.first("Content-Length"), let n = Int64(v), n >= 0 { size = n }
        if last.status == 206, let cr = last.first("Content-Range"), let parsed = ContentRange(parsing: cr) {
            size = parsed.total
        }
        let ranges = last.first("Accept-Ranges")?.lowercased().contains("bytes") ?? false
        return OriginInfo(
            requestedURL: hops[0].url, finalURL: last.url, size: size,
            etag: last.first("ETag") ?? hops.lazy.compactMap { $0.first("ETag") }.first,
            lastModified: last.first("Last-Modified"),
            acceptsRanges: ranges || last.status == 206, digest: digest)
    }

    /// `W/"x"` and `"x"` both give `x` (as the Hugging Face client does).
    public static func normalizeETag(_ v: String) -> String {
        var s = Substring(v.trimmingCharacters(in: .whitespaces))
        if s.hasPrefix("W/") { s = s.dropFirst(2) }
        return s.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    /// RFC 9530 `Repr-Digest: sha-256=:<base64>:` (other algorithms in the list are skipped).
    public static func parseReprDigest(_ v: String) -> BlobDigest? {
        for member in v.split(separator: ",") {
            let parts = member.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "sha-256" else { continue }
            let value = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: ":"))
            guard let data = Data(base64Encoded: value), data.count == 32 else { return nil }
            return try? BlobDigest(raw: data)
        }
        return nil
    }
}

/// `Content-Range: bytes FIRST-LAST/TOTAL`.
public struct ContentRange: Hashable, Sendable {
    public let first: Int64
    public let last: Int64
    public let total: Int64?

    public init(first: Int64, last: Int64, total: Int64?) {
        self.first = first
        self.last = last
        self.total = total
    }

    public init?(parsing v: String) {
        let t = v.trimmingCharacters(in: .whitespaces)
        guard t.lowercased().hasPrefix("bytes ") else { return nil }
        let rest = t.dropFirst(6)
        let slash = rest.split(separator: "/", maxSplits: 1)
        guard slash.count == 2 else { return nil }
        let se = slash[0].split(separator: "-", maxSplits: 1)
        guard se.count == 2, let f = Int64(se[0]), let l = Int64(se[1]), f >= 0, l >= f else { return nil }
        first = f
        last = l
        if slash[1] == "*" {
            total = nil
        } else {
            // RFC 9110 §14.4: the last byte lies inside the representation (so `last + 1` never overflows).
            guard let t = Int64(slash[1]), t > l else { return nil }
            total = t
        }
    }

    public var header: String { "bytes \(first)-\(last)/\(total.map(String.init) ?? "*")" }
}

/// A single `Range: bytes=…` request header, resolved against a representation of `size` bytes.
public enum ByteRangeRequest: Equatable, Sendable {
    case whole
    case range(Range<Int64>)
    case unsatisfiable

    public static func parse(_ header: String?, size: Int64) -> ByteRangeRequest {
        guard size >= 0 else { return .unsatisfiable }
        guard let header else { return .whole }
        let t = header.trimmingCharacters(in: .whitespaces)
        guard t.lowercased().hasPrefix("bytes=") else { return .whole }  // unknown unit: ignore (RFC 9110)
        let spec = t.dropFirst(6)
        guard !spec.contains(",") else { return .whole }  // multipart ranges are not supported: send all
        let se = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard se.count == 2 else { return .unsatisfiable }
        let a = se[0].trimmingCharacters(in: .whitespaces), b = se[1].trimmingCharacters(in: .whitespaces)
        // RFC 9110 §14.1.1: positions are decimal digits only (Int64("+5") would also accept a sign).
        guard (a + b).utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return .unsatisfiable }
        if a.isEmpty {
            guard let n = Int64(b), n > 0 else { return .unsatisfiable }
            return size == 0 ? .unsatisfiable : .range(max(0, size - n)..<size)
        }
        guard let first = Int64(a), first >= 0 else { return .unsatisfiable }
        guard first < size else { return .unsatisfiable }
        if b.isEmpty { return .range(first..<size) }
        guard let last = Int64(b), last >= first else { return .unsatisfiable }
        // `last` may be anything up to Int64.max: clamp it to the last byte before adding one.
        return .range(first..<(min(last, size - 1) + 1))
    }
}
