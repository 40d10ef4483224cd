import ModelCacheCore

/// What `serve` says once its node listens: a line for people and the same values as log metadata. Built from the
/// port the listener bound, so `--listen HOST:0` reports the port peers and browsers can reach, never 0.
public struct ServeBanner: Sendable, Equatable {
    /// The address the node listens on, with the bound port.
    public let listen: PeerAddress
    public let text: String
    public let metadata: [String: String]

    public init(nodeID: String, name: String, cacheDir: String, listen: PeerAddress, controlSocket: String) {
        self.listen = listen
        // A wildcard listener answers on loopback; any other is reached at the address it listens on.
        let page = NodeSettings.isWildcard(listen.host) ? PeerAddress(host: "127.0.0.1", port: listen.port) : listen
        text = "modelcache: node \(nodeID) '\(name)' serving \(cacheDir) on \(listen); control socket \(controlSocket); status page \(page.baseURL)/"
        metadata = ["node.id": nodeID, "node.name": name, "cache.dir": cacheDir, "listen": "\(listen)", "control.socket": controlSocket]
    }
}

extension Node {
    /// The listen address with the port the listener bound, once it is bound; nil if it never was (the port is
    /// busy, or the node stopped first).
    public func listenAddress() async -> PeerAddress? {
        let port = await listeningPort()
        return port > 0 ? PeerAddress(host: settings.listenHost, port: port) : nil
    }

    /// The banner, once the listener is bound (nil if it never was).
    public func serveBanner() async -> ServeBanner? {
        guard let listen = await listenAddress() else { return nil }
        return ServeBanner(nodeID: nodeID, name: settings.name, cacheDir: store.root, listen: listen, controlSocket: controlSocketPath)
    }
}
