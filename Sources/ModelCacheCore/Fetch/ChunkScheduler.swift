/// Where chunks can come from. The origin can serve any chunk (when it supports Range); a peer serves the chunks
/// in its availability set.
public struct SourceID: Hashable, Sendable, CustomStringConvertible, Comparable {
    public enum Kind: String, Sendable, Hashable, Codable { case origin, peer }
    public let kind: Kind
    public let name: String

    public init(_ kind: Kind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    public static let origin = SourceID(.origin, "origin")
    public static func peer(_ name: String) -> SourceID { SourceID(.peer, name) }
    public var description: String { kind == .origin ? "origin" : "peer \(name)" }
    public static func < (a: Self, b: Self) -> Bool { (a.kind.rawValue, a.name) < (b.kind.rawValue, b.name) }
}

/// The multi-source chunk scheduler: pure state, no I/O, no clock of its own (callers pass `now`).
///
/// Workers (one per connection) ask `next(for:now:)` what to fetch and report each outcome; the scheduler answers
/// with decisions. Rules:
/// - peers first: the origin takes only chunks that no usable peer holds;
/// - among peers, rarest chunk first, so copies spread;
/// - a chunk that fails is retried after an exponential backoff, at most `maxAttempts` times in all;
/// - a peer that serves a corrupt chunk is quarantined at once; one that fails `peerFailureLimit` times in a row is
///   quarantined too; a quarantined source gets no more work and its chunks go elsewhere;
/// - a peer whose chunk failed gets no new chunk while its other chunks are in flight, nor for the back-off of its
///   failures in a row: those chunks report first (a peer that stalls on every connection reaches the quarantine
///   limit, instead of taking new chunks to stall on between its failures; a sound one verifies one and goes on).
public struct ChunkScheduler: Sendable {
    public struct Settings: Sendable, Hashable {
        public var maxAttempts: Int = 8
        public var retryBaseDelay: Duration = .milliseconds(200)
        public var retryMaxDelay: Duration = .seconds(10)
        public var peerFailureLimit: Int = 3
        /// Where the origin's in-order walk starts (swarm: each node starts elsewhere, so nodes that begin together
        /// fetch different chunks from the origin). 0 = chunk 0.
        public var originStart: Int = 0
        /// The origin's connections for this download (0: no cap). In a swarm of m members a node keeps at most
        /// ⌈this / m⌉ origin chunks in flight, so the swarm as a whole asks the origin no more than one node would:
        /// each chunk then arrives sooner (a larger share of the uplink each), and peers copy it while the download
        /// runs instead of all at the end.
        public var originConnections: Int = 0
        /// End-game: at most this many duplicate fetches in flight at once (0: never duplicate).
        public var maxDuplicates: Int = 2
        /// End-game: a chunk is duplicated only when its fetch is expected to need at least this much longer.
        public var endGameMinRemaining: Duration = .milliseconds(500)
        /// End-game: the origin duplicates a chunk (its own, on another connection, or a peer's) only when that chunk
        /// has been in flight this long and is expected to need at least this much longer (a stuck or crawling
        /// transfer). Origin bytes are the ones the cache exists to save: a peer that is merely slower than the origin,
        /// or a connection that shares the origin's bottleneck, is left to finish.
        public var endGameOriginStall: Duration = .seconds(5)
        /// End-game: chunks larger than this are never duplicated (a duplicate is held in memory until it wins).
        public var endGameMaxChunkBytes: Int64 = 16 << 20
        /// Spans: outside a swarm, a source is handed up to this many bytes of consecutive chunks at once (those it
        /// would take next anyway: see `spanLength`), to ask for in one Range GET (each chunk still cut, hashed,
        /// verified and reported on its own as the body passes its end). Fewer requests leave each connection idle
        /// less often between chunks (bench/request-size.sh). 0 or one chunk's size: one chunk per request. Off here;
        /// the fetch engine's settings turn it on (`FetchEngine.Settings.scheduler`).
        public var maxSpanBytes: Int64 = 0
        public init() {}

        /// Exponential backoff before retry number `attempt` (1-based): base, 2×base, … capped at the maximum.
        public func backoff(attempt: Int) -> Duration { retryPolicy.delay(attempt: attempt) }

        /// The retry policy these settings describe (no jitter: the scheduler's clock is the caller's).
        public var retryPolicy: RetryPolicy {
            RetryPolicy(maxAttempts: maxAttempts, baseDelay: retryBaseDelay, maxDelay: retryMaxDelay)
        }
    }

    public enum Decision: Equatable, Sendable {
        /// Fetch this chunk from the asking source.
        case fetch(Int)
        /// Nothing to do before this instant (a retry is backing off); ask again then or when woken.
        case waitUntil(Duration)
        /// Nothing this source can do now; other sources hold the remaining work. Ask again when woken.
        case idle
        /// Fetch `count` (≥ 2) consecutive chunks from `first` in one request (see `Settings.maxSpanBytes`). The first
        /// chunk has begun; each later one is only queued until its source calls `begin(chunk:span:from:now:)` (which
        /// may say another source took it), and what the source does not reach it gives back with `releaseQueued`.
        case fetchSpan(first: Int, count: Int)
        /// This source will never get work again (quarantined or removed): the worker should stop.
        case retire
        /// Every chunk is done.
        case finished
        /// End-game: fetch a second copy of a chunk that another source is fetching and that is expected to finish
        /// last. The copy goes to memory; whichever copy is verified first is kept, the other is cancelled.
        case duplicate(Int)
    }

    public enum Outcome: Equatable, Sendable {
        case verified
        /// The bytes did not match the expected chunk digest.
        case corrupt
        /// Connection error, timeout, bad status: worth retrying.
        case failed
    }

    public enum Failure: Error, Equatable, Sendable {
        /// A chunk failed `maxAttempts` times.
        case chunkExhausted(chunk: Int, attempts: Int)
        /// Chunks remain that no usable source holds, and nothing is in flight that could change that.
        case noSourceFor(chunks: [Int])
    }

    struct SourceState: Sendable {
        var kind: SourceID.Kind
        var has: ChunkSet?  // nil = every chunk
        /// Chunks this peer says it is fetching now (swarm): the origin leaves them to it.
        var claims: ChunkSet?
        /// The node id of a peer downloading the same blob (swarm member), for splitting the origin's work.
        var swarmID: String?
        var consecutiveFailures = 0
        /// A peer that just failed takes no new chunk before this instant.
        var restUntil: Duration? = nil
        var quarantined = false
        var inFlight = 0
        var chunksDone = 0
        /// Connections this source runs for the download (a span leaves each of them a share of what is left).
        var connections = 1
    }

    public let layout: ChunkLayout
    public let settings: Settings
    public private(set) var done: ChunkSet
    public private(set) var inFlight: [Int: SourceID] = [:]
    public private(set) var attempts: [Int: Int] = [:]
    /// End-game: the source fetching a second copy of a chunk (at most one per chunk).
    public private(set) var duplicates: [Int: SourceID] = [:]
    /// Chunks queued in a span (handed out, not begun), each with the span's first chunk (its name: a source's
    /// connections share the source's id, their spans do not).
    public private(set) var queued: [Int: Int] = [:]
    /// When each in-flight fetch began and how many bytes it has received (for its expected finish).
    private var started: [Int: Duration] = [:]
    private var received: [Int: Int64] = [:]
    /// Bytes per second of each source's last verified chunk.
    private var rate: [SourceID: Double] = [:]
    private var notBefore: [Int: Duration] = [:]
    private var sources: [SourceID: SourceState] = [:] { didSet { peerViewDirty = true } }
    /// Per chunk: how many usable peers hold it, and whether a usable peer is fetching it. Recomputed only after the
    /// sources change, so `next` stays a linear scan of plain arrays.
    private var peerCopiesCache: [Int] = []
    private var claimedCache: [Bool] = []
    private var ownedCache: [Bool] = []
    private var ownedFor: [String]? = nil  // the sorted members ownedCache was computed for
    private var peerViewDirty = true
    /// Chunks whose bytes came from each source (for blame and for `--json`).
    public private(set) var servedBy: [Int: SourceID] = [:]

    public init(layout: ChunkLayout, alreadyHave: ChunkSet? = nil, settings: Settings = .init()) {
        self.layout = layout
        self.settings = settings
        self.done = alreadyHave ?? ChunkSet(capacity: layout.count)
    }

    public var isFinished: Bool { done.isComplete }
    public var quarantined: [SourceID] { sources.filter { $0.value.quarantined }.map(\.key).sorted() }

    public mutating func addSource(_ id: SourceID, has: ChunkSet?, connections: Int = 1) {
        if var s = sources[id] {
            s.has = has
            s.connections = max(1, connections)
            sources[id] = s
        } else {
            sources[id] = SourceState(kind: id.kind, has: has, connections: max(1, connections))
        }
    }

    /// A peer's latest availability (swarm): what it holds verified and what it is fetching, and (when it is
    /// downloading the blob too) its node id.
    public mutating func updatePeer(_ id: SourceID, has: ChunkSet, claims: ChunkSet, swarmID: String? = nil) {
        if sources[id] == nil { sources[id] = SourceState(kind: id.kind, has: has) }
        sources[id]!.has = has
        sources[id]!.claims = claims
        sources[id]!.swarmID = swarmID
    }

    /// This node's id in a swarm (nil: no swarm). With it, chunk `c` belongs to the member at `c mod n` of the
    /// sorted ids of this node and the peers downloading the same blob: the origin fetches this node's own chunks
    /// first (ascending), then, when those are done, takes others' that nobody holds or fetches (descending, so it
    /// meets their owner last).
    public var swarmSelf: String? { didSet { peerViewDirty = true } }

    public mutating func removeSource(_ id: SourceID) {
        sources[id]?.quarantined = true
    }

    public func isUsable(_ id: SourceID) -> Bool {
        guard let s = sources[id] else { return false }
        return !s.quarantined
    }

    private func holds(_ s: SourceState, _ chunk: Int) -> Bool {
        s.has.map { $0.contains(chunk) } ?? true
    }

    private mutating func refreshPeerView() {
        guard peerViewDirty else { return }
        var copies = [Int](repeating: 0, count: layout.count)
        var claimed = [Bool](repeating: false, count: layout.count)
        for s in sources.values where s.kind == .peer && !s.quarantined {
            for c in 0..<layout.count {
                if holds(s, c) { copies[c] += 1 }
                if s.claims?.contains(c) ?? false { claimed[c] = true }
            }
        }
        peerCopiesCache = copies
        claimedCache = claimed
        var members = Set(sources.values.compactMap { $0.quarantined ? nil : $0.swarmID })
        if let me = swarmSelf { members.insert(me) }
        let sorted = members.sorted()
        if ownedFor != sorted || ownedCache.count != layout.count {
            // Rendezvous (highest-random-weight) hashing: each chunk belongs to the member with the highest hash of
            // (member, chunk). Every node computes the same owner from the same members, and a member that joins
            // late takes over only its own share (1/n of the chunks) instead of reshuffling everyone's.
            ownedCache = (0..<layout.count).map { c in
                guard let me = swarmSelf, sorted.count > 1 else { return true }
                return sorted.max { (ChunkScheduler.weight($0, c), $0) < (ChunkScheduler.weight($1, c), $1) } == me
            }
            ownedFor = sorted
        }
        memberCount = sorted.count
        peerViewDirty = false
    }

    /// Swarm members (this node included) in the last peer view.
    private var memberCount = 1

    /// How many origin chunks this node keeps in flight at once (nil: no cap).
    private var originCap: Int? {
        guard settings.originConnections > 0, swarmSelf != nil, memberCount > 1 else { return nil }
        return max(1, (settings.originConnections + memberCount - 1) / memberCount)
    }

    public mutating func next(for id: SourceID, now: Duration) -> Decision {
        if done.isComplete { return .finished }
        guard let me = sources[id], !me.quarantined else { return .retire }
        if me.kind == .peer && me.consecutiveFailures > 0 && me.inFlight > 0 { return .idle }
        if let rest = me.restUntil, rest > now { return .waitUntil(rest) }
        refreshPeerView()
        if me.kind == .origin, let cap = originCap, me.inFlight >= cap { return .idle }
        var best: (chunk: Int, copies: Int)? = nil
        var earliestWait: Duration? = nil
        let n = layout.count
        let start = me.kind == .origin && n > 0 ? ((settings.originStart % n) + n) % n : 0
        // The origin walks its own chunks first, then (descending) everyone else's.
        let rotated = (0..<n).map { (start + $0) % n }
        let order: [Int] = me.kind == .origin && swarmSelf != nil
            ? rotated.filter { ownedCache[$0] } + rotated.reversed().filter { !ownedCache[$0] }
            : rotated
        for chunk in order {
            guard !done.contains(chunk) && inFlight[chunk] == nil && holds(me, chunk) else { continue }
            let copies = peerCopiesCache[chunk]
            // The origin leaves to peers what peers hold, and what a peer is fetching now (it will hold it soon).
            if me.kind == .origin && (copies > 0 || claimedCache[chunk]) { continue }
            if let t = notBefore[chunk], t > now {
                earliestWait = min(earliestWait ?? t, t)
                continue
            }
            if me.kind == .origin { best = (chunk, 0); break }  // in order: helps sequential hashing
            if best == nil || copies < best!.copies { best = (chunk, copies) }
        }
        if let best {
            assign(best.chunk, to: id, now: now)
            let count = spanLength(after: best.chunk, for: id, me, now: now)
            guard count > 1 else { return .fetch(best.chunk) }
            // The rest of the span is queued: in flight for this source (nobody else takes it), not begun (no age, so
            // the end-game does not take it for a stuck transfer).
            for c in best.chunk + 1..<best.chunk + count {
                inFlight[c] = id
                queued[c] = best.chunk
            }
            sources[id]?.inFlight += count - 1
            return .fetchSpan(first: best.chunk, count: count)
        }
        if let earliestWait { return .waitUntil(earliestWait) }
        if let chunk = queuedChunkToTake(for: id, me, now: now), let owner = inFlight[chunk] {
            queued[chunk] = nil
            sources[owner]?.inFlight -= 1
            assign(chunk, to: id, now: now)
            return .fetch(chunk)
        }
        if let chunk = endGameChunk(for: id, me, now: now) {
            duplicates[chunk] = id
            sources[id]?.inFlight += 1
            return .duplicate(chunk)
        }
        return .idle
    }

    /// `chunk`'s fetch by `id` begins now.
    private mutating func assign(_ chunk: Int, to id: SourceID, now: Duration) {
        inFlight[chunk] = id
        started[chunk] = now
        received[chunk] = 0
        sources[id]?.inFlight += 1
    }

    /// How many consecutive chunks from `first` (just taken by `id`) make its request (a span): 1 in a swarm (its
    /// members' claims and availability need chunks handed out one at a time) or when spans are off; else as many as
    /// fit in `maxSpanBytes` that this source would take next anyway (free, held by it, not backing off; for the
    /// origin, held and claimed by no peer, so no peer could take them), but no more than this connection's share of
    /// the chunks nobody has taken yet, so that the last requests of the download end together. A peer shares with
    /// every usable peer's connections (they compete for the same chunks); the origin with its own only.
    private func spanLength(after first: Int, for id: SourceID, _ me: SourceState, now: Duration) -> Int {
        let size = layout.chunkSize
        guard size > 0, settings.maxSpanBytes >= 2 * size, swarmSelf == nil else { return 1 }
        let free = { (c: Int) in
            !self.done.contains(c) && self.inFlight[c] == nil && self.holds(me, c)
                && (self.notBefore[c].map { $0 <= now } ?? true)
                && (me.kind == .peer || (self.peerCopiesCache[c] == 0 && !self.claimedCache[c]))
        }
        let connections = me.kind == .origin ? me.connections
            : sources.reduce(0) { $0 + ($1.value.kind == .peer && !$1.value.quarantined ? $1.value.connections : 0) }
        let untaken = (0..<layout.count).reduce(0) { $0 + (free($1) ? 1 : 0) }
        let share = untaken / max(1, connections)  // `first` is taken already: this share is of what follows
        let limit = min(Int(min(settings.maxSpanBytes / size, Int64(layout.count))), 1 + share)
        var count = 1
        while count < limit, first + count < layout.count, free(first + count) { count += 1 }
        return count
    }

    /// A source reached a chunk of the span that starts at `span`: the chunk's fetch begins now (its age, for the
    /// end-game and the rate). False when the chunk is no longer the span's (a source with nothing else to do took it,
    /// see `queuedChunkToTake`): the span ends there.
    public mutating func begin(chunk: Int, span: Int, from id: SourceID, now: Duration) -> Bool {
        guard inFlight[chunk] == id, queued[chunk] == span else { return false }
        queued[chunk] = nil
        started[chunk] = now
        received[chunk] = 0
        return true
    }

    /// Gives back, without counting an attempt, every chunk still queued in the span that starts at `span` (its
    /// request failed or ended before reaching them).
    public mutating func releaseQueued(span: Int, from id: SourceID) {
        for (chunk, s) in queued where s == span && inFlight[chunk] == id {
            queued[chunk] = nil
            inFlight[chunk] = nil
            sources[id]?.inFlight -= 1
        }
    }

    /// For a source with nothing else to do: the last queued chunk of a span whose source is slow, taken from that
    /// span (whose request then ends before it). A span is slow when the chunk it is receiving is expected to need at
    /// least `endGameMinRemaining` more: without this, a connection that crawls would keep its queued chunks while the
    /// others sit idle at the end of the download. The origin never takes a chunk a peer holds or claims.
    private func queuedChunkToTake(for id: SourceID, _ me: SourceState, now: Duration) -> Int? {
        var best: Int? = nil
        for (chunk, span) in queued where best.map({ chunk > $0 }) ?? true {
            guard holds(me, chunk), queued[chunk + 1] != span, let owner = inFlight[chunk] else { continue }
            if me.kind == .origin && (peerCopiesCache[chunk] > 0 || claimedCache[chunk]) { continue }
            // The chunk the span is receiving: the last one before `chunk` that it has begun and not finished.
            guard let receiving = (span..<chunk).last(where: { inFlight[$0] == owner && queued[$0] == nil }),
                  let remaining = expectedRemaining(chunk: receiving, now: now),
                  remaining >= settings.endGameMinRemaining else { continue }
            best = chunk
        }
        return best
    }

    /// Bytes received so far by the fetch of `chunk` that `id` runs (first copy only; feeds the end-game's estimate).
    public mutating func progress(chunk: Int, from id: SourceID, bytes: Int64) {
        guard inFlight[chunk] == id else { return }
        received[chunk] = max(received[chunk] ?? 0, bytes)
    }

    /// When the fetch of an in-flight chunk is expected to end, from its bytes so far and its age (nil: not known yet;
    /// a fetch with no byte at all is treated as never ending).
    public func expectedRemaining(chunk: Int, now: Duration) -> Duration? {
        guard inFlight[chunk] != nil, let since = started[chunk] else { return nil }
        let age = now - since
        let got = received[chunk] ?? 0
        let left = layout.length(of: chunk) - got
        guard left > 0 else { return .zero }
        guard got > 0 else { return age >= settings.endGameMinRemaining ? .seconds(Int64.max / 4) : nil }
        let seconds = Double(left) * age.inSeconds / Double(got)
        return .seconds(min(seconds, 1e9))
    }

    /// The end-game choice for a source with nothing else to do, once every chunk left is in flight: the in-flight
    /// chunk (of another source, or of another origin connection) expected to
    /// finish last, when this source holds it, nobody duplicates it yet, fewer than `maxDuplicates` duplicates run,
    /// and this source (at its last measured rate) would fetch the whole chunk before the first copy ends. The origin
    /// never duplicates a chunk that another usable peer holds verified: that peer is asked for it instead.
    private func endGameChunk(for id: SourceID, _ me: SourceState, now: Duration) -> Int? {
        guard settings.maxDuplicates > 0, duplicates.count < settings.maxDuplicates else { return nil }
        // Only at the very end (as BitTorrent's end-game): every chunk not done is being fetched. While some chunk
        // still waits for a source (a peer's claim, a backoff), spare sources wait too: duplicates then would only
        // take bandwidth and CPU from the transfers that are moving.
        guard done.count + inFlight.count >= layout.count else { return nil }
        var best: (chunk: Int, remaining: Duration)? = nil
        for (chunk, owner) in inFlight where duplicates[chunk] == nil && holds(me, chunk) {
            // A second connection to the origin may rescue the origin's own stuck chunk; a peer never duplicates itself.
            if owner == id && me.kind != .origin { continue }
            // A peer other than the slow one that holds the chunk verified is preferred over the origin.
            let slowHolds = owner.kind == .peer && (sources[owner].map { !$0.quarantined && holds($0, chunk) } ?? false)
            if me.kind == .origin && peerCopiesCache[chunk] - (slowHolds ? 1 : 0) > 0 { continue }
            // In a swarm the origin's bytes are the scarce ones: it leaves a chunk that a LAN peer is sending to that
            // peer (a stalled peer is timed out and its chunk goes back in play).
            if me.kind == .origin && owner.kind == .peer && memberCount > 1 { continue }
            let length = layout.length(of: chunk)
            guard length <= settings.endGameMaxChunkBytes, let remaining = expectedRemaining(chunk: chunk, now: now),
                  remaining >= settings.endGameMinRemaining else { continue }
            if me.kind == .origin {
                // In flight that long and still that far from its end (a chunk without a byte yet counts as stuck only
                // once its age says so: on a loaded machine the first byte can take a while).
                guard remaining >= settings.endGameOriginStall, let since = started[chunk],
                      now - since >= settings.endGameOriginStall else { continue }
            }
            if let r = rate[id], r > 0, Double(length) / r >= remaining.inSeconds { continue }
            if let b = best, remaining < b.remaining || (remaining == b.remaining && chunk > b.chunk) { continue }
            best = (chunk, remaining)
        }
        return best?.chunk
    }

    /// Whether `id` is still fetching `chunk` (first copy or duplicate); false once another copy won, or it was
    /// given back.
    public func isFetching(chunk: Int, by id: SourceID) -> Bool {
        inFlight[chunk] == id || duplicates[chunk] == id
    }

    /// Records what happened to a chunk a source was fetching (its first copy or its end-game duplicate).
    /// Returns, on `.verified`, the source whose other copy of the chunk lost the race (to be cancelled: its bytes are
    /// discarded, not held against it). Throws when the download cannot finish (a chunk exhausted its attempts).
    @discardableResult
    public mutating func report(_ outcome: Outcome, chunk: Int, from id: SourceID, now: Duration) throws(Failure) -> SourceID? {
        let first = inFlight[chunk] == id
        guard first || duplicates[chunk] == id else { return nil }  // stale report (already reassigned or lost)
        sources[id]?.inFlight -= 1
        if !first { duplicates[chunk] = nil }
        switch outcome {
        case .verified:
            var loser: SourceID? = nil
            queued[chunk] = nil
            if first {
                inFlight[chunk] = nil
                if let d = duplicates.removeValue(forKey: chunk) { loser = d; sources[d]?.inFlight -= 1 }
            } else if let p = inFlight.removeValue(forKey: chunk) {
                loser = p
                sources[p]?.inFlight -= 1
            }
            if let since = started.removeValue(forKey: chunk), first {
                let secs = (now - since).inSeconds
                if secs > 0 { rate[id] = Double(layout.length(of: chunk)) / secs }
            }
            received[chunk] = nil
            done.insert(chunk)
            servedBy[chunk] = id
            notBefore[chunk] = nil
            sources[id]?.consecutiveFailures = 0
            sources[id]?.restUntil = nil
            sources[id]?.chunksDone += 1
            return loser
        case .corrupt, .failed:
            if outcome == .corrupt, id.kind == .peer {
                sources[id]?.quarantined = true
            } else if var s = sources[id] {
                s.consecutiveFailures += 1
                if s.kind == .peer && s.consecutiveFailures >= settings.peerFailureLimit { s.quarantined = true }
                if s.kind == .peer { s.restUntil = now + backoff(attempt: s.consecutiveFailures) }
                sources[id] = s
            }
            // A failed duplicate costs the chunk nothing: its first copy is still on its way.
            guard first else { return nil }
            inFlight[chunk] = nil
            queued[chunk] = nil
            received[chunk] = nil
            started[chunk] = nil
            let n = (attempts[chunk] ?? 0) + 1
            attempts[chunk] = n
            if n >= settings.maxAttempts { throw .chunkExhausted(chunk: chunk, attempts: n) }
            // A duplicate running becomes the chunk's fetch; it is not retried beside it.
            if promoteDuplicate(chunk, now: now) { return nil }
            // A quarantined peer's chunk is retried elsewhere at once; otherwise back off.
            if sources[id]?.quarantined == true {
                notBefore[chunk] = nil
            } else {
                notBefore[chunk] = now + backoff(attempt: n)
            }
            return nil
        }
    }

    /// The first copy of a chunk is gone: its duplicate (if any) carries on as the chunk's fetch.
    private mutating func promoteDuplicate(_ chunk: Int, now: Duration) -> Bool {
        guard let d = duplicates.removeValue(forKey: chunk) else { return false }
        inFlight[chunk] = d
        started[chunk] = now
        received[chunk] = 0
        return true
    }

    /// Gives a chunk back without counting an attempt (worker cancelled, source retired).
    public mutating func release(chunk: Int, from id: SourceID, now: Duration = .zero) {
        if duplicates[chunk] == id {
            duplicates[chunk] = nil
            sources[id]?.inFlight -= 1
            return
        }
        guard inFlight[chunk] == id else { return }
        inFlight[chunk] = nil
        queued[chunk] = nil
        received[chunk] = nil
        started[chunk] = nil
        sources[id]?.inFlight -= 1
        _ = promoteDuplicate(chunk, now: now)
    }

    /// Forgets that a chunk was done (the whole-blob check blamed it); it will be fetched again.
    public mutating func invalidate(chunk: Int) {
        done.remove(chunk)
        servedBy[chunk] = nil
    }

    /// Throws when no usable source holds some remaining chunk and nothing is in flight.
    public func checkProgressPossible() throws(Failure) {
        guard inFlight.isEmpty, !done.isComplete else { return }
        // A peer that is still fetching may come to hold what no one holds yet.
        if sources.values.contains(where: { $0.kind == .peer && !$0.quarantined && !($0.claims?.isEmpty ?? true) }) { return }
        let usable = sources.values.filter { !$0.quarantined }
        let orphaned = (0..<layout.count).filter { c in !done.contains(c) && !usable.contains { holds($0, c) } }
        if !orphaned.isEmpty { throw .noSourceFor(chunks: orphaned) }
    }

    /// FNV-1a of "member|chunk": a stable, well-spread weight for rendezvous hashing.
    static func weight(_ member: String, _ chunk: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in "\(member)|\(chunk)".utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        // FNV's low bits are weak for short inputs: finish with a 64-bit mix (splitmix64's).
        h ^= h >> 30; h = h &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 27; h = h &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }

    public func backoff(attempt: Int) -> Duration { settings.backoff(attempt: attempt) }
}

extension Duration {
    /// The duration in seconds, as a Double (for rates).
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
