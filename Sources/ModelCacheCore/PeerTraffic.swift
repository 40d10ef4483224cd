/// Bytes exchanged with each peer since the node started: received by a fetch from a peer (by the peer's name, as
/// the fetch engine names its sources) and sent by the peer API (by the requesting host's IP address, the only thing
/// a request tells of its sender). Names and addresses come from the LAN, so each table holds at most `limit` keys;
/// bytes of any further key are added to `otherReceived` / `otherSent` instead of growing the table.
public struct PeerTraffic: Sendable, Equatable, Codable {
    public static let defaultLimit = 1024
    public let limit: Int
    public private(set) var receivedByName: [String: Int64] = [:]
    public private(set) var sentByHost: [String: Int64] = [:]
    public private(set) var otherReceived: Int64 = 0
    public private(set) var otherSent: Int64 = 0

    public init(limit: Int = PeerTraffic.defaultLimit) {
        self.limit = max(0, limit)
    }

    public mutating func received(_ bytes: Int, fromPeer name: String) {
        guard bytes > 0 else { return }
        Self.add(Int64(bytes), to: name, in: &receivedByName, other: &otherReceived, limit: limit)
    }

    public mutating func sent(_ bytes: Int, toHost host: String) {
        guard bytes > 0 else { return }
        Self.add(Int64(bytes), to: Self.canonicalHost(host), in: &sentByHost, other: &otherSent, limit: limit)
    }

    /// Bytes sent to any of `hosts` (the addresses one peer's name resolves to: an IP, `[v6]` or not), each address
    /// counted once.
    public func sent(toHosts hosts: [String]) -> Int64 {
        Set(hosts.map(Self.canonicalHost)).reduce(0) { $0 &+ (sentByHost[$1] ?? 0) }
    }

    public func received(fromPeer name: String) -> Int64 { receivedByName[name] ?? 0 }

    /// One spelling per address: no brackets, lower case, and an IPv4-mapped IPv6 address as the IPv4 one (a
    /// dual-stack listener sees `::ffff:192.0.2.7` for a peer the directory knows as `192.0.2.7`).
    public static func canonicalHost(_ host: String) -> String {
        var h = host.lowercased()
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.hasPrefix("::ffff:"), h.dropFirst(7).contains(".") { h = String(h.dropFirst(7)) }
        return h
    }

    private static func add(_ n: Int64, to key: String, in table: inout [String: Int64], other: inout Int64, limit: Int) {
        if table[key] != nil || table.count < limit {
            table[key, default: 0] &+= n
        } else {
            other &+= n
        }
    }
}
