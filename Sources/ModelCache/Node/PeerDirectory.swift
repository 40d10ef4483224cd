import Foundation
import Logging
import Synchronization
import ModelCacheCore

/// The peers a node knows (static `--peer`s and those found over mDNS) and their catalogues.
/// Catalogues are re-read with If-None-Match, so polling an unchanged peer costs a 304.
public actor PeerDirectory {
    public enum Found: String, Sendable, Codable { case `static`, mdns }

    public struct Status: Sendable, Codable, Equatable {
        public var name: String
        public var address: String
        public var foundBy: Found
        public var nodeID: String?
        public var catalogueVersion: UInt64?
        public var blobs: Int
        public var quarantined: Bool
        public var lastError: String?
        /// Blob bytes this node's fetches took from the peer, and bytes it sent to the peer's address, since the
        /// node started (filled in by the control API from the node's metrics; nil from older nodes).
        public var received: Int64?
        public var sent: Int64?
    }

    struct Entry {
        var name: String
        var address: PeerAddress
        var foundBy: Found
        var nodeID: String?
        var advertisedVersion: UInt64?
        var catalogue: Catalogue?
        var etag: String?
        var quarantinedUntil: ContinuousClock.Instant?
        var lastError: String?
        /// The addresses its host resolves to (`HostAddresses`), once asked for; forgotten when its address changes
        /// or a call to it fails (the name may point elsewhere now).
        var hosts: [String]?
    }

    private var entries: [String: Entry] = [:]
    private let client: PeerClient
    private let selfID: String?
    private let logger: Logger
    public let quarantineTime: Duration
    /// Told of each quarantine (the node's metrics).
    private let onQuarantine: @Sendable () -> Void

    public init(client: PeerClient, selfID: String?, logger: Logger, quarantineTime: Duration = .seconds(600),
                onQuarantine: @escaping @Sendable () -> Void = {}) {
        self.onQuarantine = onQuarantine
        self.client = client
        self.selfID = selfID
        self.logger = logger
        self.quarantineTime = quarantineTime
    }

    public func addStatic(_ a: PeerAddress) {
        entries[a.description] = Entry(name: a.description, address: a, foundBy: .static)
    }

    /// A peer found (or updated) over mDNS. Returns true when its catalogue should be re-read.
    @discardableResult
    public func found(_ p: DiscoveredPeer) -> Bool {
        if p.txt.nodeID == selfID { return false }
        let address = PeerAddress(host: p.host, port: p.port)
        if var e = entries[p.instance] {
            let changed = e.address != address || e.advertisedVersion != p.txt.catalogueVersion
            if e.address != address { e.hosts = nil }
            e.address = address
            e.nodeID = p.txt.nodeID
            e.advertisedVersion = p.txt.catalogueVersion
            entries[p.instance] = e
            return changed && e.catalogue?.version != p.txt.catalogueVersion
        }
        entries[p.instance] = Entry(name: p.instance, address: address, foundBy: .mdns, nodeID: p.txt.nodeID,
                                    advertisedVersion: p.txt.catalogueVersion)
        logger.info("peer found", metadata: ["peer": "\(p.instance)", "peer.address": "\(address)"])
        return true
    }

    public func lost(_ instance: String) {
        guard entries[instance]?.foundBy == .mdns else { return }
        entries[instance] = nil
        logger.info("peer gone", metadata: ["peer": "\(instance)"])
    }

    /// Blames from fetches (synchronous callers), waiting to be applied by the actor.
    private nonisolated let blames = Mutex<[(name: String, reason: String)]>([])

    private func applyBlames() {
        for b in blames.withLock({ b in defer { b.removeAll() }; return b }) { quarantine(b.name, reason: b.reason) }
    }

    public func quarantine(_ name: String, reason: String) {
        guard let entry = entries[name] else { return }
        let now = ContinuousClock.now
        // Counted once per quarantine: a peer blamed for every chunk it corrupted is quarantined once, not per blame.
        if !(entry.quarantinedUntil.map { $0 > now } ?? false) { onQuarantine() }
        entries[name]?.quarantinedUntil = now + quarantineTime
        entries[name]?.lastError = reason
        logger.warning("peer quarantined", metadata: ["peer": "\(name)", "reason": "\(reason)"])
    }

    public func refresh(_ name: String) async {
        guard let e = entries[name] else { return }
        do {
            let (cat, etag) = try await client.catalogue(e.address, ifNoneMatch: e.catalogue == nil ? nil : e.etag)
            guard var now = entries[name] else { return }  // removed while we waited
            if let cat {
                if let selfID, cat.node == selfID { entries[name] = nil; return }  // ourselves, via a --peer
                now.catalogue = cat
                now.nodeID = now.nodeID ?? cat.node
            }
            now.etag = etag
            now.lastError = nil
            entries[name] = now
        } catch {
            entries[name]?.lastError = "\(error)"
            entries[name]?.hosts = nil
            logger.debug("catalogue refresh failed", metadata: ["peer": "\(name)", "error": "\(error)"])
        }
    }

    public func refreshAll() async {
        await withTaskGroup(of: Void.self) { group in
            for name in entries.keys { group.addTask { await self.refresh(name) } }
        }
    }

    /// The usable peers for a fetch (known catalogue, not quarantined), with a way to blame them.
    public func view() -> PeerView {
        applyBlames()
        let now = ContinuousClock.now
        let peers = entries.values.compactMap { e -> PeerView.Peer? in
            guard let cat = e.catalogue, (e.quarantinedUntil.map { $0 <= now } ?? true) else { return nil }
            // With a cluster key the catalogue was read only if its answer signature proved the key: a member.
            return PeerView.Peer(name: e.name, address: e.address, catalogue: cat, member: client.clusterKey != nil)
        }.sorted { $0.name < $1.name }
        return PeerView(peers: peers, blame: { [weak self] name, reason in
            self?.blames.withLock { $0.append((name, reason)) }  // a non-blocking hand-off, applied before the next read
        })
    }

    public func status() -> [Status] {
        applyBlames()
        let now = ContinuousClock.now
        return entries.values.map { e in
            Status(name: e.name, address: e.address.description, foundBy: e.foundBy, nodeID: e.nodeID,
                   catalogueVersion: e.catalogue?.version, blobs: e.catalogue?.blobs.count ?? 0,
                   quarantined: e.quarantinedUntil.map { $0 > now } ?? false, lastError: e.lastError)
        }.sorted { $0.name < $1.name }
    }

    /// The addresses each peer's host resolves to, by peer name: the senders a request from that peer may show.
    /// Resolved when first asked for (a `--peer` given by name), then kept until the peer's address changes.
    public func senderHosts() async -> [String: [String]] {
        for (name, e) in entries where e.hosts == nil {
            let hosts = await HostAddresses.resolve(e.address.host)
            if entries[name]?.address == e.address { entries[name]?.hosts = hosts }  // unless it moved meanwhile
        }
        return entries.compactMapValues(\.hosts)
    }

    public var names: [String] { Array(entries.keys) }
}
