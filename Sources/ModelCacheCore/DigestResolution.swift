/// Decides which whole-blob digest a fetch will trust, and on whose word (protocol/PROTOCOL.md §8).
///
/// The rule in one line: the user's `--sha256`, else the origin's own digest, else, **with the origin reachable**,
/// the origin's own bytes (fetched and hashed) unless at least `minIndependentPeers` distinct nodes make first-hand
/// claims that match the origin's size, ETag and Last-Modified and no such claim names another blob; **offline**
/// (origin unreachable, or `--no-origin`), the peers' claims alone, most distinct nodes winning, a tie deciding
/// nothing. **Members** (peers proven to hold this node's cluster key, §14) count more: with the origin reachable, one
/// member's matching claim is enough; offline, when members claim the URL, only members' claims count.
public struct DigestResolution: Sendable, Equatable {
    /// Who decided the digest.
    public enum Origin: String, Sendable, Codable {
        /// `--sha256`.
        case user
        /// The origin's digest header (§1).
        case origin
        /// Origin reachable without a digest: enough independent peers whose claims match the origin's validators.
        case peersAgree = "peers-agree"
        /// Offline: the peers' claims alone (a classroom's teacher).
        case peers
        /// Nobody: the blob is fetched from the origin and its digest computed.
        case computed
    }

    public struct Decision: Equatable, Sendable {
        public var expected: BlobDigest?
        public var source: Origin
        /// Peers whose catalogue claims for the URL contradict the decision (they lie, or hold an older version).
        public var contradicting: [String]
        public init(expected: BlobDigest?, source: Origin, contradicting: [String] = []) {
            self.expected = expected
            self.source = source
            self.contradicting = contradicting
        }
    }

    /// What one peer's catalogue says the URL is.
    public struct Claim: Equatable, Sendable {
        /// The peer as this node names it (its address or mDNS instance).
        public var peer: String
        /// The node id its catalogue gives: claims count as independent only when their node ids differ.
        public var node: String
        public var entry: Catalogue.Entry
        /// The peer proved this node's cluster key (its catalogue's answer signature checked, §14).
        public var member: Bool
        public init(peer: String, node: String? = nil, entry: Catalogue.Entry, member: Bool = false) {
            self.peer = peer
            self.node = node ?? peer
            self.entry = entry
            self.member = member
        }
    }

    /// What the origin said when asked.
    public enum OriginAnswer: Equatable, Sendable {
        /// It answered: its digest (if any) and validators.
        case answered(digest: BlobDigest?, size: Int64?, etag: String?, lastModified: String?)
        /// Not reached (down, timed out, 5xx, or remembered as down), or not to be asked (`--no-origin`).
        case offline
    }

    /// Distinct nodes whose matching claims decide the digest while the origin is reachable (≥ 2: one liar alone
    /// can never decide; a peer's word is worth nothing against the origin's bytes unless another node backs it).
    public var minIndependentPeers: Int

    public init(minIndependentPeers: Int = 2) {
        self.minIndependentPeers = max(2, minIndependentPeers)
    }

    public func decide(user: BlobDigest?, origin: OriginAnswer, claims: [Claim]) -> Decision {
        if let user { return Decision(expected: user, source: .user, contradicting: Self.contradictions(claims, user)) }
        switch origin {
        case .answered(let digest?, _, _, _):
            return Decision(expected: digest, source: .origin, contradicting: Self.contradictions(claims, digest))
        case .answered(nil, let size, let etag, let lastModified):
            return online(size: size, etag: etag, lastModified: lastModified, claims: claims)
        case .offline:
            return offline(claims)
        }
    }

    /// Origin reachable, no digest: the claims that match every validator the origin gave (size and ETag required on
    /// both sides, Last-Modified when the origin sends one) must all name one blob, from enough distinct nodes or
    /// from at least one member of this node's cluster.
    func online(size: Int64?, etag: String?, lastModified: String?, claims: [Claim]) -> Decision {
        guard let size, let etag else { return Decision(expected: nil, source: .computed) }
        let wanted = OriginInfo.normalizeETag(etag)
        let matching = claims.filter { c in
            guard c.entry.size == size, let pe = c.entry.etag, OriginInfo.normalizeETag(pe) == wanted else { return false }
            if let lastModified { return c.entry.lastModified == lastModified }
            return true
        }
        let digests = Set(matching.map(\.entry.sha256))
        guard digests.count == 1, let d = digests.first,
              Set(matching.map(\.node)).count >= minIndependentPeers || matching.contains(where: \.member) else {
            return Decision(expected: nil, source: .computed)
        }
        return Decision(expected: d, source: .peersAgree, contradicting: Self.contradictions(claims, d))
    }

    /// Offline: the digest named by the most distinct nodes (only members when any member claims the URL); a tie (or
    /// no claim) decides nothing.
    func offline(_ claims: [Claim]) -> Decision {
        let members = claims.filter(\.member)
        var votes: [BlobDigest: Set<String>] = [:]
        for c in members.isEmpty ? claims : members { votes[c.entry.sha256, default: []].insert(c.node) }
        let ranked = votes.sorted { $0.value.count > $1.value.count || ($0.value.count == $1.value.count && $0.key < $1.key) }
        guard let top = ranked.first, ranked.count == 1 || ranked[1].value.count < top.value.count else {
            return Decision(expected: nil, source: .computed)
        }
        return Decision(expected: top.key, source: .peers, contradicting: Self.contradictions(claims, top.key))
    }

    static func contradictions(_ claims: [Claim], _ d: BlobDigest) -> [String] {
        Array(Set(claims.filter { $0.entry.sha256 != d }.map(\.peer))).sorted()
    }
}
