import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import ModelCacheCore
import NIOCore
import Synchronization

/// Fetches a URL into the store: cache hit, else chunks in parallel from every source that holds them (LAN peers
/// first, the origin for the rest), each chunk hashed as it streams and checked against the manifest when it comes
/// from a peer, the whole blob verified before commit. Interrupted runs resume from `partial/`.
public final class FetchEngine: Sendable {
    public struct Settings: Sendable {
        /// Spans of up to 16 MiB outside a swarm (bench/request-size.sh measured 4 MiB and 16 MiB GETs).
        public var scheduler: ChunkScheduler.Settings = {
            var s = ChunkScheduler.Settings()
            s.maxSpanBytes = 16 << 20
            return s
        }()
        /// Attempts for the HEAD probe and for a whole single-stream download.
        public var probeAttempts = 4
        /// Parallel connections to each peer.
        public var peerConnections = 4
        /// How many peers' manifests are compared before a fetch trusts one.
        public var manifestQuorum = 3
        /// A LAN peer that has not delivered a whole chunk in this time is treated as failed for that chunk
        /// (a slow peer must not hold chunks hostage; the read timeout catches peers that send nothing at all).
        public var peerChunkTimeout: Duration = .seconds(30)
        /// The cache's size limit (`serve --max-size`): least-recently-used unpinned blobs are evicted to make room,
        /// and a blob that cannot fit fails with `quota-exceeded` before any byte is downloaded.
        public var maxCacheSize: Int64?
        /// Bytes per second from origins, across every fetch of this engine (`serve --max-origin-rate`).
        public var maxOriginRate: Int64?
        /// Which digest a fetch trusts (protocol §8).
        public var trust = DigestResolution()
        /// When peers can serve a URL, how long the origin's answer is waited for before the fetch goes on without
        /// it (offline rule, protocol §8): a LAN serves a whole model in about the time a dead uplink takes to
        /// time out one connect, so a fetch must not wait for that.
        public var originGrace: Duration = .milliseconds(750)
        /// How long an origin host that failed is left alone (doubling, protocol §8).
        public var originHealth = OriginHealth.Settings()
        /// Which origin requests go through the site's proxy (`--origin-proxy`, `http_proxy`…); peers never do.
        public var originProxy = ProxyRule.direct
        /// The cluster key (`--cluster-key-file`, protocol §14): requests to peers are signed with it, and the peers
        /// (whose catalogues proved it) are members for §8.
        public var clusterKey: ClusterKey?
        public init() {}
    }

    public let store: Store
    public let http: HTTPClient
    public let settings: Settings
    /// Downloads in progress that this node shares with peers (swarm); nil when nothing serves them.
    public let active: ActiveDownloads?
    /// Told of bytes received, fetches ended and evictions (the node's metrics); nil: nobody counts.
    public let observer: (any FetchObserver)?
    let originLimiter: RateLimiter?
    let logger: Logger
    /// Origin hosts recently found unreachable.
    let health: Mutex<OriginHealth>
    /// Origin answers got by `expectedSize`, taken by the fetch that follows (one probe per fetch).
    let probeMemo = Mutex<[String: (info: OriginInfo, at: ContinuousClock.Instant)]>([:])

    /// The client for origin requests (rate-limited when the node has a limit).
    var originClient: OriginClient {
        var c = OriginClient(http: http, limiter: originLimiter, route: OriginRoute(rule: settings.originProxy), logger: logger)
        c.credentials = credentials
        return c
    }

    func originClient(for request: FetchRequest) -> OriginClient {
        var c = OriginClient(http: http, headers: request.originHeaders, limiter: originLimiter,
                             route: OriginRoute(rule: settings.originProxy), logger: logger)
        c.credentials = credentials
        return c
    }

    /// The client for a LAN peer's chunks: direct (never through the site's proxy), signed with the cluster key, and
    /// naming the peer when it cannot be reached.
    func peerClient() -> OriginClient {
        var c = OriginClient(http: http, clusterKey: settings.clusterKey, logger: logger)
        c.isPeer = true
        return c
    }

    /// The node's own credentials for some origins (a registry mirror's anonymous tokens, protocol §16).
    public let credentials = OriginCredentials()

    public init(store: Store, http: HTTPClient, settings: Settings = .init(), active: ActiveDownloads? = nil,
                observer: (any FetchObserver)? = nil, logger: Logger) {
        self.active = active
        self.observer = observer
        self.originLimiter = settings.maxOriginRate.map(RateLimiter.init(bytesPerSecond:))
        self.store = store
        self.http = http
        self.settings = settings
        self.logger = logger
        self.health = Mutex(OriginHealth(settings: settings.originHealth))
        if !settings.originProxy.isDirect {
            logger.info("origin requests go through a proxy", metadata: ["proxy": "\(settings.originProxy)"])
        }
    }

    public static func validate(url: String) throws(ModelCacheError) {
        guard HTTPURLCheck.problem(url) == nil else { throw .malformedURL(url) }
    }

    /// A stored blob for this request, without any network request. A `--sha256` hit maps nothing (protocol §8):
    /// the user's word is not evidence of what the URL serves.
    public func cached(_ request: FetchRequest) throws -> BlobRecord? {
        try FetchEngine.cached(request, in: store)
    }

    /// The stored blob a request is answered with, if any: no engine, no HTTP client (a cache hit's whole work).
    public static func cached(_ request: FetchRequest, in store: Store) throws -> BlobRecord? {
        if let r = try store.lookup(url: request.url), request.expected == nil || request.expected == r.sha256 { return r }
        if let e = request.expected, let r = try store.lookup(digest: e) { return r }
        return nil
    }

    /// One source of chunks for a run: where its bytes are and how to check them.
    struct Source: Sendable {
        var id: SourceID
        var info: OriginInfo
        var connections: Int
        /// Chunk digests every chunk from this source must match (peers); nil = the source is trusted per chunk
        /// (the origin: its bytes are checked by the whole-blob digest).
        var verifyAgainst: [BlobDigest]?
    }

    /// What `download` got: every chunk's digest, the source of each chunk a peer served (for blame when the whole
    /// blob fails its check), and the whole blob's digest when a one-stream download computed it from its chunks'
    /// reads (`ChunkReadBackHasher`; nil otherwise: the in-order hasher or a read of the file gives it).
    struct Downloaded: Sendable {
        var digests: [Int: BlobDigest]
        var servedBy: [Int: SourceID]
        var whole: BlobDigest?
    }

    public func fetch(_ request: FetchRequest, peers: PeerView = .none,
                      progress: (@Sendable (FetchProgress) -> Void)? = nil) async throws -> FetchResult {
        try FetchEngine.validate(url: request.url)
        let clock = Stopwatch()
        if let hit = try cached(request) {
            try store.touch(hit.sha256)
            observer?.fetchEnded(.hit)
            return .hit(hit, url: request.url, seconds: clock.seconds)
        }
        // One download of a URL at a time, across processes: a second one waits, then finds the first one's blob.
        let urlLock = try await DownloadLock.acquire(partialDir: store.partialDir, url: request.url)
        defer { urlLock.release() }
        if let hit = try cached(request) {
            try store.touch(hit.sha256)
            observer?.fetchEnded(.hit)
            return .hit(hit, url: request.url, seconds: clock.seconds)
        }
        let result: FetchResult
        do {
            result = try await fetchLocked(request, peers: peers, progress: progress, clock: clock)
        } catch {
            // A fetch stopped by shutdown neither hit nor missed.
            if !(error is CancellationError) && !Task.isCancelled { observer?.fetchEnded(.failed) }
            throw error
        }
        observer?.fetchEnded(result.cached ? .hit : .downloaded(ContinuousClock.now - clock.start))
        return result
    }

    /// The fetch itself, with the URL's download lock held: a restart after the origin's late answer stays inside
    /// it (taking the lock again from this process would wait for itself).
    private func fetchLocked(_ request: FetchRequest, peers: PeerView, progress: (@Sendable (FetchProgress) -> Void)?,
                             clock: Stopwatch) async throws -> FetchResult {
        // 1. What the origin says (unless told not to ask it), asked once; when peers can serve the URL, waited for
        //    only `originGrace`, and not at all while its host is remembered as down. A definite answer such as 404
        //    ends the fetch; an unreachable origin leaves the peers to serve it.
        let origin = originClient(for: request)
        let claims = peers.claims(forURL: request.url)
        var info: OriginInfo? = nil
        var originFailure: (any Error)? = nil
        var late: PendingProbe? = nil
        defer { late?.cancel() }
        switch try await askOrigin(request, origin: origin, peersCanServe: peersCanServe(request, peers, claims)) {
        case .info(let i): info = i
        case .offline(let error, let pending):
            originFailure = error
            late = pending
            logger.info("origin unreachable, trying peers", metadata: ["url": "\(request.url)", "error": "\(error)"])
        case .notAsked: break
        }

        // 2. Which digest to trust (protocol §8).
        var decision = settings.trust.decide(
            user: request.expected,
            origin: info.map { .answered(digest: $0.digest, size: $0.size, etag: $0.etag, lastModified: $0.lastModified) } ?? .offline,
            claims: claims)
        let expected = decision.expected
        if let expected, let hit = try store.lookup(digest: expected) {
            let evidence = URLEvidence.forHit(decided: decision.source, originDigest: info?.digest, hit: expected)
            if let evidence {
                try store.addURL(request.url, to: expected, evidence: evidence, etag: info?.etag, lastModified: info?.lastModified)
            }
            try store.touch(expected)
            var result = FetchResult.hit(hit, seconds: clock.seconds)
            result.digestSource = evidence ?? .user
            return result
        }

        // 3. Peers that hold it, and a manifest they agree on.
        var peerSources: [Source] = []
        var manifest: Manifest? = nil
        if let expected {
            (manifest, peerSources) = await agreeOnManifest(expected, peers: peers, size: info?.size)
        }
        guard info != nil || !peerSources.isEmpty else {
            throw originFailure ?? ModelCacheError.noSource(
                request.useOrigin ? "no peer holds \(request.url)" : "no peer holds \(request.url), and --no-origin forbids the origin")
        }
        guard let size = manifest?.size ?? info?.size else {
            throw ModelCacheError.protocolViolation("the origin gives no size for \(request.url) (no Content-Length); it cannot be fetched in verified chunks")
        }
        if let limit = settings.maxCacheSize {
            let evicted = try store.makeRoom(for: size, limit: limit)
            if evicted.blobs > 0 { observer?.evicted(blobs: evicted.blobs, bytes: evicted.bytes) }
        }
        let chunkSize = manifest?.chunkSize ?? request.chunkSize
        let meta = PartialDownload.Meta(url: request.url, size: size, chunkSize: chunkSize,
                                        etag: info?.etag, lastModified: info?.lastModified, expected: expected)
        // A resumed download re-hashes every chunk it had verified (seconds for a large file): on its own thread.
        let (partial, resumed) = try await OwnThread.run { [store, logger] in
            try PartialDownload.open(in: store, meta: meta, logger: logger)
        }
        // Swarm (protocol §11): with a trusted digest, the download is shared while it runs, and peers downloading
        // the same blob are asked for what they have.
        if let expected { active?.register(expected, partial: partial, url: request.url, shared: !request.isPrivate) }
        defer { if let expected { active?.unregister(expected) } }
        let swarm = expected == nil || request.isPrivate ? [] : peers.peers.filter { p in !peerSources.contains { $0.id == .peer(p.name) } }
        let layout = partial.layout
        let counters = TransferCounters(observer: observer, swarm: Set(swarm.map(\.name)))
        var have = ChunkSet(capacity: layout.count)
        for c in resumed.keys { have.insert(c) }
        let resumedBytes = resumed.keys.reduce(Int64(0)) { $0 + layout.length(of: $1) }
        counters.downloaded.store(resumedBytes, ordering: .relaxed)

        // 4. Download what is missing, with two helpers beside it in one task group: the progress reporter (every
        //    200 ms) and the in-order hasher (the whole-blob digest, ready when the last chunk is verified).
        var sources = peerSources
        if let info {
            sources.append(Source(id: .origin, info: info, connections: max(1, min(request.connections, 32)), verifyAgainst: nil))
        }
        var digests = resumed
        var servedBy: [Int: SourceID] = [:]
        // A fresh download in one stream from the first byte hashes the whole blob with its chunks, from the same
        // reads (`ChunkReadBackHasher`); any other runs the in-order hasher beside the connections.
        let hashesWithStream = have.count == 0 && streamPlan(sources: sources, swarm: swarm, layout: layout, have: have)?.start == 0
        var wholeFrom = hashesWithStream ? "with-chunk-digests" : "in-order"
        var whole = try await withThrowingTaskGroup(of: BlobDigest?.self) { group in
            // The hasher is the one piece left to finish after the last byte: it goes ahead of the connections.
            if !hashesWithStream { group.addTask(priority: .high) { try await partial.hashInOrder() } }
            if let progress {
                group.addTask {
                    while !Task.isCancelled {
                        progress(FetchProgress(downloaded: counters.downloaded.load(ordering: .relaxed), total: size, sources: counters.sources))
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                    return nil
                }
            }
            defer { group.cancelAll() }
            var streamedWhole: BlobDigest? = nil
            do {
                if !have.isComplete {
                    let got = try await download(request, info: info, sources: sources, partial: partial,
                                                 have: have, digests: resumed, counters: counters, origin: origin,
                                                 peers: peers, swarm: expected.map { ($0, swarm) }, hashWhole: hashesWithStream)
                    (digests, servedBy, streamedWhole) = (got.digests, got.servedBy, got.whole)
                }
            } catch {
                if case .originChanged? = error as? ModelCacheError { partial.discard() }
                if case .diskFull? = error as? ModelCacheError { partial.discard() }  // free its space, leave nothing behind
                throw error
            }
            if hashesWithStream {
                if let streamedWhole { return streamedWhole }
                wholeFrom = "read-back"
                return try await OwnThread.run { try partial.wholeDigest() }  // the stream could not give it: read it
            }
            while let d = try await group.next() { if let d { return d } }
            throw CancellationError()  // only the hasher returns a digest, and it returns or throws
        }

        // 5. The whole blob, checked; a failure with peer bytes in it is traced back to the peers (via the origin).
        if let expected, whole != expected, let info, servedBy.values.contains(where: { $0.kind == .peer }) {
            logger.warning("whole-blob check failed; re-fetching peer chunks from the origin", metadata: ["url": "\(request.url)"])
            try await refetchPeerChunks(servedBy: servedBy, digests: &digests, partial: partial, info: info,
                                        origin: origin, counters: counters, peers: peers)
            whole = try await OwnThread.run { try partial.wholeDigest() }
        }
        if let expected, whole != expected {
            partial.discard()
            throw ModelCacheError.digestMismatch(expected: expected, got: whole)
        }
        // An origin that answered after the grace still decides (protocol §8): when its answer does not back the
        // peers' digest, these bytes are dropped and the fetch starts again with that answer.
        if decision.source == .peers, let answer = late?.peek() {
            switch answer {
            case .success(let now):
                let recheck = settings.trust.decide(
                    user: nil, origin: .answered(digest: now.digest, size: now.size, etag: now.etag, lastModified: now.lastModified),
                    claims: claims)
                guard recheck.expected == whole else {
                    logger.warning("the origin answered late and does not back the peers' digest; fetching again with its answer",
                                   metadata: ["url": "\(request.url)", "blob.sha256": "\(whole)", "digest.source": "\(recheck.source.rawValue)"])
                    if let expected { active?.unregister(expected) }
                    partial.discard()
                    remember(now, for: request.url)
                    return try await fetchLocked(request, peers: peers, progress: progress, clock: clock)
                }
                decision = recheck
                info = now
            case .failure(let error):
                if !OriginClient.isUnreachable(error) { partial.discard(); throw error }
            }
        }
        partial.markWholeVerified()
        let chunkDigests = (0..<layout.count).compactMap { digests[$0] }
        guard chunkDigests.count == layout.count else {
            throw ModelCacheError.io(path: partial.dataPath, detail: "\(layout.count - chunkDigests.count) chunk digests are missing after the download; run the fetch again")
        }
        let finalManifest = try Manifest(sha256: whole, layout: layout, chunks: chunkDigests)
        let evidence = URLEvidence.forCommit(
            decided: decision.source, originDigest: info?.digest, committed: whole,
            onlyOriginBytes: info != nil && resumed.isEmpty && !counters.sources.contains { $0.key.hasPrefix("peer ") && $0.value > 0 })
        let record: BlobRecord
        do {
            // The commit's fsync waits for the disk (long on a slow one): on its own thread.
            record = try await OwnThread.run { [store, info] in
                try store.commit(file: partial.dataPath, manifest: finalManifest, url: request.url, evidence: evidence,
                                 etag: info?.etag, lastModified: info?.lastModified, isPrivate: request.isPrivate)
            }
        } catch ModelCacheError.diskFull(let path, let needed) {
            partial.discard()  // verified but it cannot be kept: free its space, leave nothing behind
            throw ModelCacheError.diskFull(path: path, needed: needed)
        }
        let hashed = partial.hashSources
        partial.discard()
        progress?(FetchProgress(downloaded: size, total: size))
        logger.info("fetched", metadata: ["url": "\(request.url)", "blob.sha256": "\(whole)", "blob.size": "\(size)",
                                          "hash.from_memory": "\(hashed.memory)", "hash.read_back": "\(hashed.file)",
                                          "hash.whole": "\(wholeFrom)",
                                          "digest.source": "\(decision.source.rawValue)", "url.evidence": "\(evidence.rawValue)", "seconds": "\(clock.seconds)",
                                          "sources": "\(counters.sources.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))"])
        return FetchResult(path: record.path, sha256: whole, size: size, sources: counters.sources,
                           seconds: clock.seconds, cached: false, resumedBytes: resumedBytes, digestSource: evidence)
    }

    func download(_ request: FetchRequest, info: OriginInfo?, sources: [Source], partial: PartialDownload,
                  have: ChunkSet, digests: [Int: BlobDigest], counters: TransferCounters,
                  origin: OriginClient, peers: PeerView,
                  swarm: (BlobDigest, [PeerView.Peer])?, hashWhole: Bool = false) async throws -> Downloaded {
        if let (start, source) = streamPlan(sources: sources, swarm: swarm?.1 ?? [], layout: partial.layout, have: have) {
            // A peer is asked directly, never through the site's proxy.
            let (d, whole) = try await singleStream(request, source, partial, from: start, digests: digests, counters: counters,
                                                    client: source.id == .origin ? origin : peerClient(), peers: peers,
                                                    hashWhole: hashWhole)
            return Downloaded(digests: d, servedBy: [:], whole: whole)
        }
        // What is still missing, as one stream from the origin (past the chunks verified by then).
        func originStream(_ info: OriginInfo) async throws -> Downloaded {
            let d = try await singleStream(request, Source(id: .origin, info: info, connections: 1, verifyAgainst: nil), partial,
                                           digests: digests, counters: counters, client: origin, peers: peers).digests
            return Downloaded(digests: d, servedBy: [:], whole: nil)
        }
        // A Range-less origin still serves what the peers cannot, as one stream, after the peers are done.
        let rangeSources = sources.filter { $0.id != .origin || $0.info.acceptsRanges }
        do {
            let (d, served) = try await parallel(sources: rangeSources, partial: partial, have: have, digests: digests,
                                                 counters: counters, peers: peers, origin: origin, swarm: swarm)
            return Downloaded(digests: d, servedBy: served, whole: nil)
        } catch let e as ModelCacheError {
            guard case .noSource = e, let info, !info.acceptsRanges else { throw e }
            return try await originStream(info)
        } catch is OriginClient.RangeIgnored {
            guard let info else { throw ModelCacheError.protocolViolation("a peer ignored Range") }
            logger.info("origin ignores Range; falling back to one stream", metadata: ["url": "\(request.url)"])
            return try await originStream(info)
        }
    }

    /// Where `download` takes one stream from, and from which byte (`StreamPlan`); nil: chunks, from every source.
    func streamPlan(sources: [Source], swarm: [PeerView.Peer], layout: ChunkLayout, have: ChunkSet) -> (start: Int64, source: Source)? {
        guard sources.count == 1, swarm.isEmpty, let only = sources.first else { return nil }
        let plan = StreamPlan.decide(sole: only.id == .origin ? .origin : .peer, acceptsRanges: only.info.acceptsRanges,
                                     connections: only.connections, layout: layout, have: have)
        guard case .oneStream(let start) = plan else { return nil }
        return (start, only)
    }

    /// The size a request will add to the cache (0 on a hit), from the origin's HEAD or, when it is unreachable or
    /// not to be asked, from peers' catalogues; nil when nobody can tell. Definite origin errors (404…) are thrown.
    /// The origin's answer is kept for the fetch that follows, which then does not ask again.
    /// - Parameter confirm: ask the origin even when peers can serve the URL (one attempt). A caller about to fail a
    ///   job on a size that came from peers asks again with this: a peer's word alone must not fail a job (one that
    ///   claims a giant size for a URL would fail every job for it, on a quota or a declared total).
    public func expectedSize(_ request: FetchRequest, peers: PeerView, confirm: Bool = false) async throws -> Int64? {
        try FetchEngine.validate(url: request.url)
        if try cached(request) != nil { return 0 }
        let claims = peers.claims(forURL: request.url)
        // When peers can serve it, their size is enough for the check (the fetch enforces the real one): the origin
        // is then asked by the fetch alone, which may go on without it after the grace. Otherwise one attempt: the
        // check is advisory, and a dead origin must not hold the job for a round of retries before its fetch.
        if confirm || !peersCanServe(request, peers, claims) {
            if case .info(let info) = try await askOrigin(request, origin: originClient(for: request), peersCanServe: false, attempts: 1) {
                remember(info, for: request.url)
                if let d = info.digest, try store.lookup(digest: d) != nil { return 0 }
                return info.size
            }
        }
        if let e = request.expected, let entry = peers.holders(of: e).first?.1 { return entry.size }
        return claims.first?.entry.size
    }

    /// What asking the origin gave.
    enum OriginOutcome: Sendable {
        case info(OriginInfo)
        /// Unreachable, remembered as down, or silent for the grace while peers could serve: the offline rule.
        /// `late`: the probe still running after the grace, whose answer is checked before commit.
        case offline(any Error, late: PendingProbe?)
        /// `--no-origin`.
        case notAsked
    }

    /// Whether a peer lists the URL, or holds the digest the user gave.
    func peersCanServe(_ request: FetchRequest, _ peers: PeerView, _ claims: [DigestResolution.Claim]) -> Bool {
        !claims.isEmpty || (request.expected.map { !peers.holders(of: $0).isEmpty } ?? false)
    }

    /// Asks the origin once for this fetch (protocol §8). With peers that can serve the URL: not at all while the
    /// host is remembered as down, else one attempt waited for at most `originGrace` (a miss counts as a failure
    /// of the host; the probe goes on and its answer is checked before commit). Without: as many attempts as
    /// `probeAttempts` (one while the host is remembered as down). Definite errors (404, 403, …) are thrown.
    func askOrigin(_ request: FetchRequest, origin: OriginClient, peersCanServe: Bool, attempts most: Int? = nil) async throws -> OriginOutcome {
        guard request.useOrigin else { return .notAsked }
        if let memo = takeMemo(request.url) { return .info(memo) }
        let host = OriginHealth.key(of: request.url) ?? request.url
        let now = ContinuousClock.now
        let downUntil = health.withLock { $0.downUntil(host, now: now) }
        if let downUntil, peersCanServe {
            return .offline(ModelCacheError.originUnreachable(
                url: request.url, detail: "its host failed recently; not tried again for \(downUntil - now)"), late: nil)
        }
        let attempts = peersCanServe || downUntil != nil ? 1 : max(1, min(most ?? settings.probeAttempts, settings.probeAttempts))
        // A success forgets the host's failures even when it comes late; failures are counted once, below.
        let probe = PendingProbe({ try await self.probe(origin, request.url, attempts: attempts) }, onAnswer: { [self] r in
            if case .success = r { health.withLock { $0.succeeded(host) } }
        })
        let answer = await probe.wait(upTo: peersCanServe ? settings.originGrace : nil)
        switch answer {
        case .success(let info)?:
            return .info(info)
        case .failure(let error)?:
            guard OriginClient.isUnreachable(error) else { throw error }
            health.withLock { $0.failed(host, now: .now) }
            return .offline(error, late: nil)
        case nil:
            if Task.isCancelled { probe.cancel(); throw CancellationError() }
            health.withLock { $0.failed(host, now: .now) }
            return .offline(ModelCacheError.originUnreachable(
                url: request.url, detail: "no answer within \(settings.originGrace) while peers hold it"), late: probe)
        }
    }

    static let probeMemoLifetime: Duration = .seconds(60)

    func remember(_ info: OriginInfo, for url: String) {
        let now = ContinuousClock.now
        probeMemo.withLock { memo in
            memo = memo.filter { now - $0.value.at < FetchEngine.probeMemoLifetime }
            if memo.count < 4096 { memo[url] = (info, now) }
        }
    }

    func takeMemo(_ url: String) -> OriginInfo? {
        probeMemo.withLock { memo in
            guard let m = memo.removeValue(forKey: url), ContinuousClock.now - m.at < FetchEngine.probeMemoLifetime else { return nil }
            return m.info
        }
    }

    func probe(_ origin: OriginClient, _ url: String, attempts: Int) async throws -> OriginInfo {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await origin.probe(url)
            } catch {
                guard let wait = retryPolicy(attempts: attempts).retryDelay(after: error, attempt: attempt,
                                                                                          sample: .random(in: 0..<1)) else { throw error }
                logger.debug("probe failed, retrying", metadata: ["url": "\(url)", "error": "\(error)"])
                try await Task.sleep(for: wait)
            }
        }
    }

    /// The engine's retry policy (its back-off from the scheduler's settings, a little jitter) for a loop of `attempts`.
    func retryPolicy(attempts: Int) -> RetryPolicy {
        var p = settings.scheduler.retryPolicy
        p.maxAttempts = max(1, attempts)
        p.jitter = 0.2
        return p
    }
}

/// Seconds since creation, for reports.
public struct Stopwatch: Sendable {
    public let start = ContinuousClock.now
    public init() {}
    public var seconds: Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
