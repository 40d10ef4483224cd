/// Keys remembered for a while, at most `capacity` of them: for example the Hub repos that just refused an anonymous
/// client, so a node does not ask again for each of their files. When full, expired keys go first, then the key that
/// would expire soonest.
public struct ExpiringSet<Key: Hashable & Sendable>: Sendable {
    public let lifetime: Duration
    public let capacity: Int
    private var until: [Key: ContinuousClock.Instant] = [:]

    public init(lifetime: Duration, capacity: Int) {
        self.lifetime = lifetime
        self.capacity = max(1, capacity)
    }

    public var count: Int { until.count }

    public func contains(_ key: Key, now: ContinuousClock.Instant = .now) -> Bool {
        guard let end = until[key] else { return false }
        return now < end
    }

    public mutating func insert(_ key: Key, now: ContinuousClock.Instant = .now) {
        if until[key] == nil, until.count >= capacity {
            until = until.filter { now < $0.value }
            if until.count >= capacity, let soonest = until.min(by: { $0.value < $1.value })?.key { until[soonest] = nil }
        }
        until[key] = now + lifetime
    }

    public mutating func remove(_ key: Key) { until[key] = nil }
}
