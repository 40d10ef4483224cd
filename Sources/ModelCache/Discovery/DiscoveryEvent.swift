import ModelCacheCore

/// A node found on the LAN through DNS-SD.
public struct DiscoveredPeer: Sendable, Hashable {
    /// The DNS-SD service instance name (unique on the link, e.g. `"a"` or `"a #2"` after a collision).
    public var instance: String
    /// A numeric address: dotted IPv4, or IPv6 (link-local ones carry a `%interface` scope).
    public var host: String
    public var port: Int
    public var txt: PeerTXT

    public init(instance: String, host: String, port: Int, txt: PeerTXT) {
        self.instance = instance
        self.host = host
        self.port = port
        self.txt = txt
    }
}

/// What discovery reports, in order, on ``AvahiDiscovery/events``.
public enum DiscoveryEvent: Sendable, Equatable {
    /// A new peer, or a known peer whose address, port or TXT record changed.
    case found(DiscoveredPeer)
    /// The peer with this instance name went away (or mDNS itself became unavailable).
    case lost(instance: String)
    /// mDNS is not usable (no avahi-daemon, no D-Bus, or the daemon went away). Sent once per
    /// outage; discovery keeps retrying, and statically configured peers still work.
    case unavailable(reason: String)
    /// mDNS is usable: sent when the avahi client first reaches the running state and again
    /// after every ``unavailable(reason:)`` once the daemon is back.
    case available
}
