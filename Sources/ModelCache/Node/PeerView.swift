import ModelCacheCore

/// What a fetch knows of the LAN at its start: each usable peer and its catalogue.
public struct PeerView: Sendable {
    public struct Peer: Sendable {
        public var name: String
        public var address: PeerAddress
        public var catalogue: Catalogue
        /// The peer proved this node's cluster key (protocol §14): its claims count as a member's (§8).
        public var member: Bool
        public init(name: String, address: PeerAddress, catalogue: Catalogue, member: Bool = false) {
            self.name = name
            self.address = address
            self.catalogue = catalogue
            self.member = member
        }
    }

    public var peers: [Peer]
    /// Called when a peer served wrong bytes or a lying manifest, so the node stops asking it.
    public var blame: @Sendable (_ name: String, _ reason: String) -> Void

    public init(peers: [Peer], blame: @escaping @Sendable (String, String) -> Void = { _, _ in }) {
        self.peers = peers
        self.blame = blame
    }

    public static let none = PeerView(peers: [])

    func claims(forURL url: String) -> [DigestResolution.Claim] {
        peers.flatMap { p in
            p.catalogue.entries(forURL: url).map { DigestResolution.Claim(peer: p.name, node: p.catalogue.node, entry: $0, member: p.member) }
        }
    }

    func holders(of d: BlobDigest) -> [(Peer, Catalogue.Entry)] {
        peers.compactMap { p in p.catalogue.entry(d).map { (p, $0) } }
    }
}
