/// Where a URL→blob mapping came from (protocol §8), kept in the index's `url.evidence` column.
///
/// Only first-hand evidence (the origin's digest, the origin's own bytes, or the owner's import) is advertised to
/// peers; second-hand mappings (`peers-agree`, `peers`) answer this node's own later fetches but never spread;
/// `user` (`--sha256`) is shown by `list` and used for nothing else.
public enum URLEvidence: String, Sendable, Codable, CaseIterable, Comparable {
    /// The origin's digest header named this blob.
    case originDigest = "origin-digest"
    /// Every byte came from the origin and hashed to this blob.
    case originBytes = "origin-bytes"
    /// `add FILE --url URL`: the node's owner said so (the teacher's USB stick).
    case `import`
    /// Origin reachable without a digest: independent peers' claims matched its size, ETag and Last-Modified.
    case peersAgree = "peers-agree"
    /// Offline: the peers' claims alone (one teacher is enough in a classroom).
    case peers
    /// Recorded before evidence was (index migration "v5-url-evidence"): kept for this node, not advertised.
    case unknown
    /// `--sha256` only: nobody else vouched for the mapping.
    case user

    /// Advertised in the catalogue.
    public var isFirstHand: Bool { self == .originDigest || self == .originBytes || self == .import }

    /// Answers a later fetch of the URL that has no digest (a cache hit by URL).
    public var isReusable: Bool { self != .user }

    var rank: Int {
        switch self {
        case .originDigest: 5
        case .originBytes: 4
        case .import: 3
        case .peersAgree: 2
        case .peers: 1
        case .unknown: 1
        case .user: 0
        }
    }

    /// Stronger first.
    public static func < (a: URLEvidence, b: URLEvidence) -> Bool { a.rank > b.rank }

    /// Whether a new mapping of a URL with this evidence replaces one with `old` (the origin's file may change, so
    /// any reusable evidence replaces; a `--sha256` note never replaces a mapping someone vouched for).
    public func replaces(_ old: URLEvidence) -> Bool { isReusable || old == .user }

    /// The evidence a fetch has for the blob it commits.
    /// - Parameters:
    ///   - decided: who decided the expected digest (`DigestResolution`).
    ///   - originDigest: the origin's digest header, if it sent one.
    ///   - committed: the digest of the committed bytes.
    ///   - onlyOriginBytes: every byte of the blob came from the origin in this fetch (no peer chunk, no resumed one).
    public static func forCommit(decided: DigestResolution.Origin, originDigest: BlobDigest?, committed: BlobDigest,
                                 onlyOriginBytes: Bool) -> URLEvidence {
        if originDigest == committed { return .originDigest }
        if onlyOriginBytes || decided == .computed { return .originBytes }
        switch decided {
        case .user: return .user
        case .peers: return .peers
        case .peersAgree, .origin, .computed: return .peersAgree
        }
    }

    /// The evidence for mapping a URL to an already stored blob the decision names (nil: record nothing).
    public static func forHit(decided: DigestResolution.Origin, originDigest: BlobDigest?, hit: BlobDigest) -> URLEvidence? {
        if originDigest == hit { return .originDigest }
        switch decided {
        case .peersAgree: return .peersAgree
        case .peers: return .peers
        case .user, .origin, .computed: return nil
        }
    }
}
