/// Merges per-interface, per-protocol sightings of services into one peer per instance name and
/// says which ``DiscoveryEvent`` each change produces. Pure logic: no avahi, no locks.
struct PeerSightings {
    /// Usable resolutions, by instance name, then by the sighting.
    private var sightings: [String: [ServiceKey: DiscoveredPeer]] = [:]
    /// What was last reported as `.found` for each instance.
    private var reported: [String: DiscoveredPeer] = [:]

    var reportedPeers: [DiscoveredPeer] { Array(reported.values) }

    /// Records the latest resolution of `key`; `nil` means the service is not usable (unparsable
    /// TXT, our own node). Returns the event to emit, if the instance's visible peer changed.
    mutating func update(_ key: ServiceKey, peer: DiscoveredPeer?) -> DiscoveryEvent? {
        if let peer {
            sightings[key.name, default: [:]][key] = peer
        } else if sightings[key.name] != nil {
            sightings[key.name]![key] = nil
            if sightings[key.name]!.isEmpty { sightings[key.name] = nil }
        }
        return reconcile(key.name)
    }

    /// The browser said `key` went away.
    mutating func remove(_ key: ServiceKey) -> DiscoveryEvent? {
        update(key, peer: nil)
    }

    /// Forgets everything (our avahi client went away); returns a `.lost` per reported peer.
    mutating func removeAll() -> [DiscoveryEvent] {
        let lost = reported.keys.sorted().map { DiscoveryEvent.lost(instance: $0) }
        sightings = [:]
        reported = [:]
        return lost
    }

    private mutating func reconcile(_ instance: String) -> DiscoveryEvent? {
        let best = sightings[instance].flatMap(Self.preferred)
        switch (reported[instance], best) {
        case (nil, nil):
            return nil
        case (.some, nil):
            reported[instance] = nil
            return .lost(instance: instance)
        case (let old, let new?):
            if old == new { return nil }
            reported[instance] = new
            return .found(new)
        }
    }

    /// IPv4 first (no scope needed), then the lowest interface index, then a stable order.
    private static func preferred(_ entries: [ServiceKey: DiscoveredPeer]) -> DiscoveredPeer? {
        entries.min { a, b in
            let ra = (a.value.host.contains(":") ? 1 : 0, a.key.interface, a.key.proto, a.value.host)
            let rb = (b.value.host.contains(":") ? 1 : 0, b.key.interface, b.key.proto, b.value.host)
            return ra < rb
        }?.value
    }
}
