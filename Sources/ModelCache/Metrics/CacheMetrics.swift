import ModelCacheCore
import Prometheus
import Synchronization

/// One node's metrics, in its own Prometheus registry (never the process-wide `MetricsSystem`: several nodes in one
/// process, as in the tests, keep their figures apart). Counters move as things happen (the fetch engine, the peer
/// API and the peer directory report here); gauges are set from a `Snapshot` when `/metrics` is read.
/// The names are listed in README.md ("Metrics").
public final class CacheMetrics: FetchObserver, Sendable {
    public let registry = PrometheusCollectorRegistry()

    /// Peers named in labels at most; bytes from any further peer count under `peer="other"` (mDNS instance names
    /// come from the LAN: a host announcing thousands must not grow the registry without bound).
    static let maxPeerLabels = 64
    static let durationBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600), .seconds(1800),
    ]

    enum Name {
        static let received = "modelcache_received_bytes_total"
        static let served = "modelcache_served_bytes_total"
        static let hits = "modelcache_cache_hits_total"
        static let misses = "modelcache_cache_misses_total"
        static let fetchDuration = "modelcache_fetch_duration_seconds"
        static let evictions = "modelcache_evictions_total"
        static let evictedBytes = "modelcache_evicted_bytes_total"
        static let quarantines = "modelcache_peer_quarantines_total"
        static let cacheBytes = "modelcache_cache_size_bytes"
        static let cacheBlobs = "modelcache_cache_blobs"
        static let cacheLimit = "modelcache_cache_limit_bytes"
        static let jobs = "modelcache_jobs"
        static let jobsFailed = "modelcache_jobs_failed"
        static let peers = "modelcache_peers"
        static let peersQuarantined = "modelcache_peers_quarantined"
    }

    static let receivedHelp = "Bytes received by fetches, by source (origin, peer: a holder of the blob, swarm: a peer downloading it too), failed attempts included."

    private let fromOrigin: Counter
    private let fromPeers = Mutex<[ByteSource: Counter]>([:])
    private let served: Counter
    private let hits: Counter
    private let misses: Counter
    private let fetchDuration: DurationHistogram
    private let evictions: Counter
    private let evictedBytes: Counter
    private let quarantines: Counter
    private let cacheBytes: Gauge
    private let cacheBlobs: Gauge
    private let jobs: [Job.State: Gauge]
    private let jobsFailed: [Job.FailureReason: Gauge]
    private let peers: [PeerDirectory.Found: Gauge]
    private let peersQuarantined: Gauge
    /// The same figures as plain numbers, for the status page's header (the registry's counters are write-only).
    private let sums = Mutex(Totals())
    public let cacheLimit: Int64?

    /// What this node did for its LAN since it started: bytes it served to peers, bytes it took from peers and from
    /// origins, fetches answered from the cache and those that downloaded.
    public struct Totals: Sendable, Codable, Equatable {
        public var servedToPeers: Int64 = 0
        public var fromPeers: Int64 = 0
        public var fromOrigin: Int64 = 0
        public var hits: Int64 = 0
        public var misses: Int64 = 0
    }

    public var totals: Totals { sums.withLock { $0 } }

    /// Bytes exchanged with each peer (`modelcache peers`, `/v1/local/peers`).
    private let traffic = Mutex(PeerTraffic())
    public var peerTraffic: PeerTraffic { traffic.withLock { $0 } }

    /// `cacheLimit`: the cache's size limit (`serve --max-size`), exported as a constant gauge when there is one.
    public init(cacheLimit: Int64? = nil) {
        let r = registry
        self.cacheLimit = cacheLimit
        fromOrigin = r.makeCounter(name: Name.received, labels: [("source", "origin")], help: Self.receivedHelp)
        served = r.makeCounter(name: Name.served, help: "Blob bytes sent to peers (peer API, stored blobs and downloads in progress).")
        hits = r.makeCounter(name: Name.hits, help: "Fetches (and Hub endpoint downloads) answered from the cache, without downloading.")
        misses = r.makeCounter(name: Name.misses, help: "Fetches that had to download (whether the download then succeeded or failed).")
        fetchDuration = r.makeDurationHistogram(name: Name.fetchDuration, buckets: Self.durationBuckets,
                                                help: "Time of fetches that downloaded and committed a blob.")
        evictions = r.makeCounter(name: Name.evictions, help: "Blobs evicted (least recently used) to stay under the size limit.")
        evictedBytes = r.makeCounter(name: Name.evictedBytes, help: "Bytes of the blobs evicted to stay under the size limit.")
        quarantines = r.makeCounter(name: Name.quarantines, help: "Times a peer entered quarantine (corrupt chunk, lying manifest).")
        cacheBytes = r.makeGauge(name: Name.cacheBytes, help: "Bytes of the blobs in the cache.")
        cacheBlobs = r.makeGauge(name: Name.cacheBlobs, help: "Blobs in the cache.")
        if let cacheLimit {
            r.makeGauge(name: Name.cacheLimit, help: "The cache's size limit (serve --max-size).").set(cacheLimit)
        }
        var jobs: [Job.State: Gauge] = [:]
        for s in Job.State.allCases {
            jobs[s] = r.makeGauge(name: Name.jobs, labels: [("state", s.rawValue)], help: "The node's jobs, by state.")
        }
        self.jobs = jobs
        var failed: [Job.FailureReason: Gauge] = [:]
        for f in Job.FailureReason.allCases {
            failed[f] = r.makeGauge(name: Name.jobsFailed, labels: [("reason", f.rawValue)],
                                    help: "The node's failed jobs, by failure reason.")
        }
        jobsFailed = failed
        var peers: [PeerDirectory.Found: Gauge] = [:]
        for f in [PeerDirectory.Found.mdns, .static] {
            peers[f] = r.makeGauge(name: Name.peers, labels: [("found_by", f.rawValue)],
                                   help: "Known peers, by how they were found (mdns, static: --peer).")
        }
        self.peers = peers
        peersQuarantined = r.makeGauge(name: Name.peersQuarantined, help: "Peers quarantined now.")
    }

    // MARK: Counting (FetchObserver and the node's hooks)

    public func received(_ bytes: Int, from source: ByteSource) {
        guard bytes > 0 else { return }
        counter(for: source).increment(by: Int64(bytes))
        switch source {
        case .origin: break
        case .peer(let name), .swarm(let name): traffic.withLock { $0.received(bytes, fromPeer: name) }
        }
        sums.withLock { t in
            if case .origin = source { t.fromOrigin &+= Int64(bytes) } else { t.fromPeers &+= Int64(bytes) }
        }
    }

    public func fetchEnded(_ outcome: FetchOutcome) {
        switch outcome {
        case .hit: hits.increment()
        case .downloaded(let d):
            misses.increment()
            fetchDuration.record(d)
        case .failed: misses.increment()
        }
        sums.withLock { t in if case .hit = outcome { t.hits &+= 1 } else { t.misses &+= 1 } }
    }

    public func evicted(blobs: Int, bytes: Int64) {
        evictions.increment(by: Int64(max(0, blobs)))
        evictedBytes.increment(by: max(0, bytes))
    }

    /// Blob bytes sent to a peer (`host`: the requesting address, when the connection tells it).
    public func served(_ bytes: Int, to host: String? = nil) {
        if bytes > 0 {
            served.increment(by: Int64(bytes))
            sums.withLock { $0.servedToPeers &+= Int64(bytes) }
            if let host { traffic.withLock { $0.sent(bytes, toHost: host) } }
        }
    }

    /// A peer was quarantined.
    public func quarantined() { quarantines.increment() }

    private func counter(for source: ByteSource) -> Counter {
        let kind: String, name: String
        switch source {
        case .origin: return fromOrigin
        case .peer(let n): (kind, name) = ("peer", n)
        case .swarm(let n): (kind, name) = ("swarm", n)
        }
        return fromPeers.withLock { known in
            if let c = known[source] { return c }
            let label = known.count < Self.maxPeerLabels ? Self.labelValue(name) : "other"
            let c = registry.makeCounter(name: Name.received, labels: [("source", kind), ("peer", label)], help: Self.receivedHelp)
            if known.count < Self.maxPeerLabels { known[source] = c }
            return c
        }
    }

    /// A peer's name as a label value: printable ASCII, at most 64 characters (the rest becomes `_`; the registry
    /// escapes quotes and backslashes).
    static func labelValue(_ name: String) -> String {
        String(String.UnicodeScalarView(name.unicodeScalars.prefix(64).map { $0.value >= 0x20 && $0.value < 0x7f ? $0 : "_" }))
    }

    // MARK: Reading

    /// What the gauges show, read when `/metrics` is asked for.
    public struct Snapshot: Sendable {
        public var cacheBytes: Int64
        public var cacheBlobs: Int
        public var jobs: [Job]
        public var peers: [PeerDirectory.Status]

        public init(cacheBytes: Int64, cacheBlobs: Int, jobs: [Job], peers: [PeerDirectory.Status]) {
            self.cacheBytes = cacheBytes
            self.cacheBlobs = cacheBlobs
            self.jobs = jobs
            self.peers = peers
        }
    }

    /// The metrics in Prometheus' text format (version 0.0.4), the gauges set from `snapshot` first.
    public func exposition(_ snapshot: Snapshot) -> [UInt8] {
        cacheBytes.set(snapshot.cacheBytes)
        cacheBlobs.set(Int64(snapshot.cacheBlobs))
        for (state, gauge) in jobs { gauge.set(Int64(snapshot.jobs.count(where: { $0.state == state }))) }
        for (reason, gauge) in jobsFailed {
            gauge.set(Int64(snapshot.jobs.count(where: { $0.state == .failure && $0.failureReason == reason })))
        }
        for (found, gauge) in peers { gauge.set(Int64(snapshot.peers.count(where: { $0.foundBy == found }))) }
        peersQuarantined.set(Int64(snapshot.peers.count(where: \.quarantined)))
        return registry.emitToBuffer()
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
