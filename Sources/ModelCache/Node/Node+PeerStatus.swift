import ModelCacheCore

extension Node {
    /// The peer directory's view of each peer, with the bytes exchanged with it since the node started
    /// (`/v1/local/peers`, `modelcache peers`): received by its name, sent by its address's host.
    public func peerStatus() async -> [PeerDirectory.Status] {
        let traffic = metrics.peerTraffic
        return await directory.status().map { s in
            var s = s
            s.received = traffic.received(fromPeer: s.name)
            s.sent = (try? PeerAddress(parsing: s.address)).map { traffic.sent(toHost: $0.host) } ?? 0
            return s
        }
    }
}
