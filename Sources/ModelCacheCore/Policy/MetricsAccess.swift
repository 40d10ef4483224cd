/// Who may read a node's `/metrics` (protocol/PROTOCOL.md §7): the node's own machine (a Prometheus on loopback),
/// or a LAN client that proved it holds the cluster key. Anyone else gets `403 not-local`: the figures say what the
/// cache holds and which peers it talks to, which is not for every host on the LAN.
public enum MetricsAccess {
    public enum Decision: Equatable, Sendable {
        case allow
        /// An HTTP status, a stable error code (§5) and a one-line message saying what to do.
        case refuse(status: Int, code: String, message: String)
    }

    /// `remoteIsLoopback`: the client's address is 127.0.0.0/8 or ::1 (also IPv4-mapped); false when unknown.
    /// `provedClusterKey`: the request carried a valid proof of the cluster key.
    public static func decide(remoteIsLoopback: Bool, provedClusterKey: Bool) -> Decision {
        if remoteIsLoopback || provedClusterKey { return .allow }
        return .refuse(status: 403, code: "not-local",
                       message: "/metrics answers this machine only: scrape it from a Prometheus on the node's host (127.0.0.1)")
    }
}
