/// Decides which whole-blob digest a fetch will trust, and where it came from (protocol/PROTOCOL.md §8).
public enum DigestResolution {
    public enum Origin: String, Sendable, Codable { case user, origin, peers, computed }

    public struct Decision: Equatable, Sendable {
        public var expected: BlobDigest?
        public var source: Origin
        /// Peers whose catalogue claims for the URL contradict the decision (they lie, or hold an older version).
        public var contradicting: [String]
    }

    /// What one peer's catalogue says the URL is.
    public struct Claim: Equatable, Sendable {
        public var peer: String
        public var entry: Catalogue.Entry
        public init(peer: String, entry: Catalogue.Entry) {
            self.peer = peer
            self.entry = entry
        }
    }

    /// - `user` (`--sha256`) wins over everything, then the origin's own digest header.
    /// - When the origin answered without a digest, a peer claim is used only if it matches the origin's size (and
    ///   its ETag, when both sides have one); among matching claims the digest most peers name wins; a tie is no
    ///   decision (nil: the blob is fetched from the origin and its digest computed).
    /// - When the origin is unreachable (`originSize == nil && originReachable == false`), the claims alone decide
    ///   by the same majority rule: the fetch then trusts the LAN peers.
    public static func decide(user: BlobDigest?, originDigest: BlobDigest?, originReachable: Bool,
                              originSize: Int64?, originETag: String?, claims: [Claim]) -> Decision {
        if let user { return Decision(expected: user, source: .user, contradicting: contradictions(claims, user, originSize)) }
        if let originDigest {
            return Decision(expected: originDigest, source: .origin, contradicting: contradictions(claims, originDigest, originSize))
        }
        let usable = claims.filter { c in
            if originReachable {
                guard let s = originSize, c.entry.size == s else { return false }
                if let oe = originETag, let pe = c.entry.etag,
                   OriginInfo.normalizeETag(oe) != OriginInfo.normalizeETag(pe) { return false }
            }
            return true
        }
        var votes: [BlobDigest: Set<String>] = [:]
        for c in usable { votes[c.entry.sha256, default: []].insert(c.peer) }
        let ranked = votes.sorted { $0.value.count > $1.value.count || ($0.value.count == $1.value.count && $0.key < $1.key) }
        guard let top = ranked.first, ranked.count == 1 || ranked[1].value.count < top.value.count else {
            return Decision(expected: nil, source: .computed, contradicting: [])
        }
        return Decision(expected: top.key, source: .peers, contradicting: contradictions(claims, top.key, nil))
    }

    static func contradictions(_ claims: [Claim], _ d: BlobDigest, _ size: Int64?) -> [String] {
        Array(Set(claims.filter { $0.entry.sha256 != d }.map(\.peer))).sorted()
    }
}
