/// `HOST:PORT` (`[v6]:PORT` for IPv6) as given on the command line, in config.toml or in the environment: the one
/// checked parser behind `PeerAddress(parsing:)` and the config file's address settings.
public struct HostPort: Sendable, Equatable {
    public var host: String
    public var port: Int

    /// Port 0 (any free port) only with `allowAnyPort`, for listen addresses. `role` names the value in errors
    /// ("peer", "--listen address").
    public init(parsing s: String, allowAnyPort: Bool = false, role: String = "peer") throws(ModelCacheError) {
        var hostPart: Substring
        var portPart: Substring
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            hostPart = s[s.index(after: s.startIndex)..<close]
            portPart = s[close...].dropFirst().drop(while: { $0 == ":" })
        } else if let colon = s.lastIndex(of: ":") {
            hostPart = s[..<colon]
            portPart = s[s.index(after: colon)...]
        } else {
            throw .invalidArgument("\(role) '\(s)' is not HOST:PORT: give a host and a port, e.g. 192.168.1.20:7070")
        }
        guard !hostPart.isEmpty else {
            throw .invalidArgument("\(role) '\(s)' has no host: give HOST:PORT, e.g. 192.168.1.20:7070")
        }
        self.port = try CommandLineNumber.port(portPart, option: "\(role) '\(s)': the port", allowAny: allowAnyPort)
        self.host = String(hostPart)
    }
}
