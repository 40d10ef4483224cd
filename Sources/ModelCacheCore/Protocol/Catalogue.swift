import Crypto

/// What a node offers its peers: every stored blob, and (protocol §7) downloads in progress.
/// Served as `GET /v1/catalogue` (protocol/PROTOCOL.md §6).
public struct Catalogue: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var sha256: BlobDigest
        public var size: Int64
        public var chunkSize: Int64
        /// URLs the node has first-hand evidence for (protocol §8): the origin's digest or bytes, or an import.
        public var urls: [String]
        /// The origin's ETag when the node fetched it, if any (lets a fetcher compare with the origin's HEAD); only
        /// when every listed URL had the same one.
        public var etag: String?
        /// The origin's Last-Modified when the node fetched it, on the same terms as `etag`.
        public var lastModified: String?
        /// True for a download in progress (protocol §11): only some chunks are there; ask `/availability`.
        public var partial: Bool?

        public init(sha256: BlobDigest, size: Int64, chunkSize: Int64, urls: [String], etag: String? = nil,
                    lastModified: String? = nil, partial: Bool? = nil) {
            self.sha256 = sha256
            self.size = size
            self.chunkSize = chunkSize
            self.urls = urls
            self.etag = etag
            self.lastModified = lastModified
            self.partial = partial
        }

        public var isPartial: Bool { partial ?? false }
    }

    public var node: String
    public var version: UInt64
    public var blobs: [Entry]

    public init(node: String, blobs: [Entry]) {
        self.node = node
        self.blobs = blobs.sorted { $0.sha256 < $1.sha256 }
        self.version = Catalogue.version(of: self.blobs)
    }

    /// A content-derived version: the first 8 bytes of the SHA-256 over the sorted entries (digest, size, chunk
    /// size, URLs). Equal content gives an equal version on every node and after restarts; any change changes it.
    public static func version(of blobs: [Entry]) -> UInt64 {
        var h = SHA256()
        for b in blobs.sorted(by: { $0.sha256 < $1.sha256 }) {
            h.update(data: Array("\(b.sha256.hex) \(b.size) \(b.chunkSize)\(b.isPartial ? " partial" : "")\n".utf8))
            for u in b.urls.sorted() { h.update(data: Array(" \(u)\n".utf8)) }
        }
        return h.finalize().withUnsafeBytes { raw in raw.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
    }

    /// Complete blobs only: a claim about a URL, or a holder of a digest (partial entries are for the swarm).
    public func entries(forURL url: String) -> [Entry] { blobs.filter { !$0.isPartial && $0.urls.contains(url) } }
    public func entry(_ d: BlobDigest) -> Entry? { blobs.first { !$0.isPartial && $0.sha256 == d } }
}
