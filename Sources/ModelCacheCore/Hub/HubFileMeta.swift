/// What a node knows of one file of a Hub repo at one commit: the answer to a `resolve` HEAD.
public struct HubFileMeta: Sendable, Hashable, Codable {
    public var repo: HubRepo
    public var commit: String
    public var path: String
    public var size: Int64?
    /// The ETag the client names the blob by: the sha256 for LFS files, the git blob sha1 otherwise (unquoted).
    public var etag: String
    /// The sha256 of the bytes, when known: the etag of an LFS file, or the digest of a blob this node stored.
    public var sha256: BlobDigest?
    /// Whether an anonymous request may see it. Files of gated or private repos are never served from the cache
    /// without the upstream accepting the client's token, never answered to peers and never advertised.
    public var isPublic: Bool

    public init(repo: HubRepo, commit: String, path: String, size: Int64?, etag: String, sha256: BlobDigest?, isPublic: Bool) {
        self.repo = repo
        self.commit = commit
        self.path = path
        self.size = size
        self.etag = etag
        self.sha256 = sha256
        self.isPublic = isPublic
    }

    /// From the headers of the upstream's answer to a HEAD (the 302 to its CDN, or a 200): nil without
    /// `X-Repo-Commit` or an ETag, which the client requires too.
    public static func from(headers: [(String, String)], status: Int, repo: HubRepo, path: String, isPublic: Bool) -> HubFileMeta? {
        func first(_ n: String) -> String? { headers.first { $0.0.caseInsensitiveCompare(n) == .orderedSame }?.1 }
        guard let commit = first("X-Repo-Commit"), HubRoute.isCommit(commit.lowercased()),
              let rawETag = first("X-Linked-Etag") ?? first("ETag") else { return nil }
        let etag = OriginInfo.normalizeETag(rawETag)
        guard !etag.isEmpty else { return nil }
        // A negative size (from the upstream or a peer) would make a backwards range when the file is served.
        var size = first("X-Linked-Size").flatMap { Int64($0) }.flatMap { $0 >= 0 ? $0 : nil }
        if size == nil, !(300...399).contains(status) { size = first("Content-Length").flatMap { Int64($0) }.flatMap { $0 >= 0 ? $0 : nil } }
        return HubFileMeta(repo: repo, commit: commit.lowercased(), path: path, size: size, etag: etag,
                           sha256: BlobDigest(ifValid: etag), isPublic: isPublic)
    }
}
