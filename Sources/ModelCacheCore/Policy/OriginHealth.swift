/// Which origin hosts a node has recently failed to reach, so that an offline classroom's fetches go to the peers
/// without probing a dead uplink every time (protocol §8). A host that failed is down until a deadline that doubles
/// with each consecutive failure (`first` … `longest`); one success forgets it. Time is given by the caller (`now`),
/// so tests drive it without waiting.
public struct OriginHealth: Sendable {
    public struct Settings: Sendable, Equatable {
        public var first: Duration
        public var longest: Duration
        public init(first: Duration = .seconds(15), longest: Duration = .seconds(300)) {
            self.first = max(.zero, first)
            self.longest = max(self.first, longest)
        }
    }

    struct Entry: Sendable, Equatable {
        var failures: Int
        var until: ContinuousClock.Instant
    }

    public let settings: Settings
    private var hosts: [String: Entry] = [:]
    /// At most this many hosts are remembered (the soonest to recover are forgotten first).
    static let capacity = 256

    public init(settings: Settings = .init()) { self.settings = settings }

    /// The host key of a URL: `scheme://host:port`, lowercased; nil for a URL without a host.
    public static func key(of url: String) -> String? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = authority.split(separator: "@", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        guard !hostPort.isEmpty else { return nil }
        let hasPort = hostPort.hasPrefix("[") ? hostPort.contains("]:") : hostPort.contains(":")
        let port = scheme == "https" ? "443" : "80"
        return "\(scheme)://\(hostPort.lowercased())\(hasPort ? "" : ":" + port)"
    }

    /// Whether the host is remembered as unreachable at `now`.
    public func isDown(_ host: String, now: ContinuousClock.Instant) -> Bool {
        hosts[host].map { now < $0.until } ?? false
    }

    /// When a down host may be tried again (nil: not down).
    public func downUntil(_ host: String, now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        hosts[host].flatMap { now < $0.until ? $0.until : nil }
    }

    /// The host did not answer (or answered 5xx/408/429): down for `first`, twice as long after each further failure.
    public mutating func failed(_ host: String, now: ContinuousClock.Instant) {
        let failures = min((hosts[host]?.failures ?? 0) + 1, 62)
        var wait = settings.first
        for _ in 1..<failures where wait < settings.longest { wait = wait * 2 }
        hosts[host] = Entry(failures: failures, until: now + min(wait, settings.longest))
        if hosts.count > Self.capacity, let soonest = hosts.min(by: { $0.value.until < $1.value.until })?.key {
            hosts[soonest] = nil
        }
    }

    /// The host answered: forget its failures.
    public mutating func succeeded(_ host: String) { hosts[host] = nil }
}
