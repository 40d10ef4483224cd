import ModelCacheCore

extension Node {
    /// The peer directory's view of each peer, with the bytes exchanged with it since the node started
    /// (`/v1/local/peers`, `modelcache peers`): received by its name, sent to the addresses its host resolves to
    /// (a request shows its sender's address, while a `--peer` may be given by name: `localhost:7070`).
    public func peerStatus() async -> [PeerDirectory.Status] {
        let hosts = await directory.senderHosts()
        let traffic = metrics.peerTraffic
        return await directory.status().map { s in
            var s = s
            s.received = traffic.received(fromPeer: s.name)
            s.sent = traffic.sent(toHosts: hosts[s.name] ?? [])
            return s
        }
    }
}
