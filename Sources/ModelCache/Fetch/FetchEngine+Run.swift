import Crypto
import Foundation
import Logging
import ModelCacheCore
import NIOCore
import Synchronization

extension FetchEngine {
    /// Workers for every source (one per connection), driven by one `ChunkScheduler`.
    func parallel(sources: [Source], partial: PartialDownload, have: ChunkSet, digests: [Int: BlobDigest],
                  counters: TransferCounters, peers: PeerView, origin: OriginClient? = nil,
                  swarm: (BlobDigest, [PeerView.Peer])? = nil) async throws -> ([Int: BlobDigest], [Int: SourceID]) {
        let layout = partial.layout
        var schedulerSettings = settings.scheduler
        let swarmPeers = swarm?.1 ?? []
        if !swarmPeers.isEmpty && layout.count > 0 { schedulerSettings.originStart = Int.random(in: 0..<layout.count) }
        if !swarmPeers.isEmpty { schedulerSettings.originConnections = sources.first { $0.id == .origin }?.connections ?? 0 }
        var scheduler = ChunkScheduler(layout: layout, alreadyHave: have, settings: schedulerSettings)
        if !swarmPeers.isEmpty { scheduler.swarmSelf = active?.nodeID }
        for s in sources { scheduler.addSource(s.id, has: nil, connections: s.connections) }
        // Peers that may be downloading the same blob: they hold nothing until their availability says otherwise.
        // Their chunks are checked against the manifest the holders agreed on, when there are holders (a swarm peer
        // downloads the same layout: its availability is used only then); without one, the whole-blob check catches a
        // bad chunk, and the origin then finds whose it was (`refetchPeerChunks`).
        var allSources = sources
        let agreed = sources.lazy.compactMap(\.verifyAgainst).first { $0.count == layout.count }
        if let (d, _) = swarm {
            for p in swarmPeers {
                scheduler.updatePeer(.peer(p.name), has: ChunkSet(capacity: layout.count), claims: ChunkSet(capacity: layout.count))
                allSources.append(Source(
                    id: .peer(p.name),
                    info: OriginInfo(requestedURL: p.address.blobURL(d), finalURL: p.address.blobURL(d), size: layout.size,
                                     etag: nil, lastModified: nil, acceptsRanges: true, digest: d),
                    connections: max(1, settings.peerConnections / 2), verifyAgainst: agreed))
            }
        }
        let run = ChunkRun(scheduler: scheduler, digests: digests)
        let key = swarm?.0
        // Before asking the origin for anything, ask the peers (for at most 250 ms) which download the same blob and
        // what they hold or claim: nodes that start together then split the origin's work from the first chunk. A
        // peer that starts later is heard of by `followAvailability` and takes its share then; nobody waits longer
        // for it. Without the origin (offline) there is no work to split: no ask.
        if let (d, _) = swarm, !swarmPeers.isEmpty, sources.contains(where: { $0.id == .origin }) {
            await withTaskGroup(of: Bool.self) { group in
                for p in swarmPeers {
                    group.addTask { await self.pollAvailabilityOnce(p, d, run: run, layout: layout); return true }
                }
                group.addTask { try? await Task.sleep(for: .milliseconds(250)); return false }
                // Every peer answered, or the bound passed: the rest are cancelled.
                var answered = 0
                while let peerAnswered = await group.next(), peerAnswered {
                    answered += 1
                    if answered == swarmPeers.count { break }
                }
                group.cancelAll()
            }
        }
        let workerSources = allSources
        try await withThrowingTaskGroup(of: Bool.self) { outer in
            outer.addTask {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for source in workerSources {
                        for _ in 0..<source.connections {
                            group.addTask {
                                // A peer is asked directly, never through the site's proxy.
                                let client = source.id == .origin ? (origin ?? self.originClient) : self.peerClient()
                                try await self.worker(source, run: run, client: client, partial: partial, counters: counters,
                                                      peers: peers, swarmKey: key)
                            }
                        }
                    }
                    // The first worker to throw ends the download at once (an origin's definite error, a Range the
                    // origin ignores, a chunk out of attempts): the others are cancelled, not waited for (`waitForAll`
                    // would wait for every worker, and an idle one waits for work that may never come).
                    while try await group.next() != nil {}
                }
                return true
            }
            if let (d, _) = swarm {
                for p in swarmPeers {
                    outer.addTask { await self.followAvailability(p, d, run: run, layout: layout); return false }
                }
            }
            while let workersDone = try await outer.next() {
                if workersDone { break }
            }
            outer.cancelAll()
        }
        return (await run.digests, await run.scheduler.servedBy)
    }

    /// Asks a peer's availability of a blob (no long-poll) until it answers, every 50 ms while it says 404 (it may
    /// be registering the same download this instant), until cancelled: what it holds and claims, and whether it is
    /// a swarm member. The caller bounds the whole round.
    func pollAvailabilityOnce(_ peer: PeerView.Peer, _ d: BlobDigest, run: ChunkRun, layout: ChunkLayout) async {
        let client = PeerClient(http: http, clusterKey: settings.clusterKey, logger: logger)
        for _ in 0..<20 where !Task.isCancelled {
            if let a = try? await client.availability(peer.address, d, after: nil), a.size == layout.size, a.chunkSize == layout.chunkSize {
                let empty = ChunkSet(capacity: layout.count)
                await run.updatePeer(.peer(peer.name), has: (try? ChunkSet(hex: a.have, capacity: layout.count)) ?? empty,
                                     claims: (try? ChunkSet(hex: a.claims, capacity: layout.count)) ?? empty,
                                     swarmID: a.complete ? nil : a.node)
                return
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Long-polls a peer's availability of a blob and feeds it to the scheduler, until cancelled.
    func followAvailability(_ peer: PeerView.Peer, _ d: BlobDigest, run: ChunkRun, layout: ChunkLayout) async {
        let client = PeerClient(http: http, clusterKey: settings.clusterKey, logger: logger)
        var version: Int? = nil
        let empty = ChunkSet(capacity: layout.count)
        while !Task.isCancelled {
            do {
                let asked = ContinuousClock.now
                guard let a = try await client.availability(peer.address, d, after: version),
                      a.size == layout.size, a.chunkSize == layout.chunkSize else {
                    await run.updatePeer(.peer(peer.name), has: empty, claims: empty)
                    try await Task.sleep(for: .milliseconds(100))
                    continue
                }
                let sameVersion = a.version == version
                version = a.version
                let has = (try? ChunkSet(hex: a.have, capacity: layout.count)) ?? empty
                let claims = (try? ChunkSet(hex: a.claims, capacity: layout.count)) ?? empty
                await run.updatePeer(.peer(peer.name), has: has, claims: claims, swarmID: a.complete ? nil : a.node)
                // The version asked about, at once: the peer did not wait for news as a long-poll does (up to 1 s,
                // protocol §11). What it said is taken; it is asked again only when that second is over, so it cannot
                // keep this loop spinning.
                if sameVersion { try await Task.sleep(until: asked + .seconds(1), clock: .continuous) }
            } catch {
                await run.updatePeer(.peer(peer.name), has: empty, claims: empty)
                try? await Task.sleep(for: .milliseconds(300))
            }
        }
    }

    func worker(_ source: Source, run: ChunkRun, client: OriginClient, partial: PartialDownload,
                counters: TransferCounters, peers: PeerView, swarmKey: BlobDigest? = nil) async throws {
        while true {
            try Task.checkCancellation()
            let generation = await run.generation
            switch try await run.next(for: source.id) {
            case .finished, .retire:
                return
            case .idle:
                await run.waitForChange(since: generation)
            case .waitUntil(let t):
                try await Task.sleep(until: await run.instant(at: t), clock: .continuous)
            case .fetch(let chunk):
                try await fetchCopy(chunk, duplicate: false, source, run: run, client: client, partial: partial,
                                    counters: counters, peers: peers, swarmKey: swarmKey)
            case .fetchSpan(let first, let count):
                try await fetchSpan(first..<first + count, source, run: run, client: client, partial: partial,
                                    counters: counters, peers: peers)
            case .duplicate(let chunk):
                logger.info("end-game: duplicating a chunk", metadata: ["chunk": "\(chunk)", "source": "\(source.id)"])
                try await fetchCopy(chunk, duplicate: true, source, run: run, client: client, partial: partial,
                                    counters: counters, peers: peers, swarmKey: swarmKey)
            }
        }
    }

    /// One copy of a chunk: the first (streamed into the file) or an end-game duplicate (into memory, written over
    /// the first copy's bytes only when it is verified first). A copy that loses the race is cancelled and its bytes
    /// are counted as discarded: not an error, and no blame for its source.
    func fetchCopy(_ chunk: Int, duplicate: Bool, _ source: Source, run: ChunkRun, client: OriginClient,
                   partial: PartialDownload, counters: TransferCounters, peers: PeerView, swarmKey: BlobDigest?) async throws {
        let layout = partial.layout
        let length = layout.length(of: chunk)
        let base = layout.range(of: chunk).lowerBound
        // A duplicate does not claim: the first copy's claim stands for the chunk (and is settled by it).
        let claimKey = duplicate ? nil : swarmKey
        if let claimKey { active?.claim(claimKey, chunk) }
        defer { if let claimKey { active?.settle(claimKey, chunk) } }
        let memory = duplicate ? ChunkMemory(count: Int(length)) : nil
        let writer = duplicate ? 0 : partial.beginWriting(chunk: chunk)
        let got = ByteCount()
        do {
            let active = self.active
            let id = source.id
            let digest = try await withLossWatch(run, chunk, id, got: got) {
                try await self.withDeadline(id.kind == .peer ? self.settings.peerChunkTimeout : nil, peer: id.name) {
                    try await self.fetchChunk(chunk, from: id, info: source.info, client: client, range: layout.range(of: chunk), counters: counters,
                                              write: { piece, offset in
                                                  if let memory {
                                                      try piece.withUnsafeReadableBytes { try memory.write($0, at: Int(offset - base)) }
                                                  } else {
                                                      try partial.write(piece, at: offset, chunk: chunk, writer: writer)
                                                  }
                                              }) { bytes in
                        got.value.store(bytes, ordering: .relaxed)
                        run.noteBytes(chunk: chunk, from: id, bytes: bytes)
                        if let claimKey { active?.renew(claimKey, chunk) }
                    }
                }
            }
            if let expected = source.verifyAgainst?[chunk], expected != digest {
                guard await run.isFetching(chunk: chunk, by: source.id) else { counters.discarded(length); return }
                if !duplicate { partial.abandon(chunk: chunk) }  // its bytes, held for the whole-blob hasher
                counters.discarded(length)
                try await chunkFailed(chunk, from: source.id, .corrupt(expected: expected, got: digest), run: run, peers: peers)
                return
            }
            guard try await run.verified(chunk: chunk, digest: digest, from: source.id) else {
                counters.discarded(length)  // the other copy was verified first
                logger.info("end-game: a whole copy lost the race", metadata: ["chunk": "\(chunk)", "source": "\(source.id)", "duplicate": "\(duplicate)"])
                return
            }
            if let memory {
                try memory.withBytes { try partial.takeOver(chunk: chunk, bytes: $0) }
                logger.info("end-game: the duplicate won", metadata: ["chunk": "\(chunk)", "source": "\(source.id)"])
            }
            try partial.recordVerified(chunk: chunk, digest: digest)
        } catch let e as ChunkFetchError {
            counters.discarded(e.bytes)
            if await !run.isFetching(chunk: chunk, by: source.id) {  // lost the race: no failure, no blame
                logger.info("end-game: a copy was cancelled", metadata: [
                    "chunk": "\(chunk)", "source": "\(source.id)", "duplicate": "\(duplicate)", "bytes": "\(e.bytes)"])
                return
            }
            // The next attempt starts again from the chunk's first byte (a duplicate held nothing in the window).
            if !duplicate { partial.abandon(chunk: chunk) }
            try await chunkFailed(chunk, from: source.id, .failed(e.underlying), run: run, peers: peers)
        }
    }

    /// What a peer's failed transfer says about the peer, when it broke the transfer protocol (an honest node never
    /// does): it answered a Range GET with the whole body, or framed its answer against the agreed manifest (a wrong
    /// `Content-Range`, a size or a `Content-Length` that disagrees, more bytes than asked). Nil for anything else
    /// (a cut, a stall, a refusal: the network or a busy peer).
    static func protocolLie(_ error: any Error) -> String? {
        if error is OriginClient.RangeIgnored { return "answered a Range request with the whole body" }
        if case .protocolViolation(let detail)? = error as? ModelCacheError { return detail }
        return nil
    }

    /// Logs a peer's `protocolLie` (at `chunk` of a parallel run) and quarantines the peer for it.
    func blameProtocolLie(_ lie: String, peer: String, chunk: Int? = nil, peers: PeerView) {
        var metadata: Logger.Metadata = ["peer": "\(peer)", "error": "\(lie)"]
        if let chunk { metadata["chunk"] = "\(chunk)" }
        logger.warning("peer broke the transfer protocol", metadata: metadata)
        peers.blame(peer, lie)
    }

    /// Why a chunk's copy failed.
    enum CopyFailure {
        /// Its bytes do not match the digest the peers agreed on.
        case corrupt(expected: BlobDigest, got: BlobDigest)
        case failed(any Error)
    }

    /// A chunk's copy failed while its source still had the chunk (its bytes given up already; a chunk or a span's).
    /// A corrupt chunk, or a peer's answer that breaks the transfer protocol (`protocolLie`), blames the peer and goes to
    /// another source; an origin's definite error, or a Range the origin ignores, ends the download; any other failure
    /// goes back to the scheduler (back-off, then this source or another).
    func chunkFailed(_ chunk: Int, from id: SourceID, _ failure: CopyFailure, run: ChunkRun, peers: PeerView) async throws {
        switch failure {
        case .corrupt(let expected, let got):
            logger.warning("peer served a corrupt chunk", metadata: [
                "peer": "\(id.name)", "chunk": "\(chunk)", "expected": "\(expected)", "got": "\(got)"])
            peers.blame(id.name, "served corrupt chunk \(chunk)")
            try await run.failed(chunk: chunk, from: id, corrupt: true,
                                 error: ModelCacheError.peerRejected(peer: id.name, detail: "corrupt chunk \(chunk)"))
        case .failed(let error):
            if id.kind == .peer, let lie = Self.protocolLie(error) {
                // A peer that breaks the transfer protocol does so on every request: quarantined as for a corrupt
                // chunk, its chunk goes to another source. Never the end of the download (other sources may serve it).
                blameProtocolLie(lie, peer: id.name, chunk: chunk, peers: peers)
                try await run.failed(chunk: chunk, from: id, corrupt: true, error: ModelCacheError.peerRejected(peer: id.name, detail: lie))
                return
            }
            if error is OriginClient.RangeIgnored || (id == .origin && !OriginClient.isRetryable(error)) {
                await run.release(chunk: chunk, from: id)
                throw error
            }
            logger.debug("chunk failed", metadata: ["chunk": "\(chunk)", "source": "\(id)", "error": "\(error)"])
            try await run.failed(chunk: chunk, from: id, corrupt: false, error: error)
        }
    }

    /// Runs a chunk's fetch until it ends or another copy of the chunk wins (then it is cancelled and this throws a
    /// `ChunkFetchError` with `LostChunk` and the bytes it had received).
    func withLossWatch<T: Sendable>(_ run: ChunkRun, _ chunk: Int, _ id: SourceID, got: ByteCount,
                                    _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let value: T? = try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask { await run.waitUntilLost(chunk: chunk, by: id); return nil }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { return nil }
            return first
        }
        guard let value else {
            throw ChunkFetchError(underlying: PartialDownload.LostChunk(chunk: chunk), bytes: got.value.load(ordering: .relaxed))
        }
        return value
    }

    /// Runs `body`, failing it with a `ChunkFetchError` when it takes longer than `limit` (nil: no limit); the
    /// failure names `peer`, the source that was too slow.
    func withDeadline<T: Sendable>(_ limit: Duration?, peer: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let limit else { return try await body() }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask { try await Task.sleep(for: limit); return nil }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw ChunkFetchError(underlying: ModelCacheError.peerRejected(peer: peer, detail: "no whole chunk within \(limit)"), bytes: 0)
            }
            return value
        }
    }

    /// Bytes a chunk's fetch has received so far, read by its loss watch.
    final class ByteCount: Sendable {
        let value = Atomic<Int64>(0)
    }

    struct ChunkFetchError: Error {
        var underlying: any Error
        var bytes: Int64
    }

    /// How many times one chunk (or one single-stream body) continues after a drop, each time from where it stopped.
    static let maxResumes = 16

    /// A peer's stream took longer than its limit for one chunk.
    struct ChunkTooSlow: Error {
        var limit: Duration
    }

    /// Streams one chunk (`range`, its bytes in the blob) from a source to `write` (offsets in the blob), hashing as it
    /// goes. Returns the chunk's digest.
    /// A body cut mid-way (a retryable failure after some bytes) continues from the byte where it stopped, from the
    /// same source and the same file (`info`'s ETag and size are checked again, `If-Range` asks for them), with the
    /// running hash kept: a source that drops every few MiB still completes a larger chunk.
    func fetchChunk(_ chunk: Int, from id: SourceID, info: OriginInfo, client: OriginClient, range: Range<Int64>,
                    counters: TransferCounters, write: @escaping @Sendable (ByteBuffer, Int64) throws -> Void,
                    onBytes: @Sendable (Int64) -> Void = { _ in }) async throws -> BlobDigest {
        var hasher = SHA256()
        var got: Int64 = 0
        var resumes = 0
        while true {
            let before = got
            do {
                try await client.fetch(url: info.requestedURL, range: range.lowerBound + got..<range.upperBound, info: info,
                                       ifRange: got > 0) { buffer, offset in
                    try write(buffer, offset)
                    buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    got += Int64(buffer.readableBytes)
                    counters.received(buffer.readableBytes, from: id)
                    onBytes(got)
                }
                return BlobDigest(hasher.finalize())
            } catch {
                // Continue only when this try moved bytes (a resume must make progress), a bounded number of times,
                // and never once another copy took the chunk.
                guard got > before, !(error is PartialDownload.LostChunk), got < Int64(range.count), resumes < Self.maxResumes, !Task.isCancelled,
                      RetryPolicy.resumesInPlace(after: error, fromPeer: id.kind == .peer) else {
                    throw ChunkFetchError(underlying: error, bytes: got)
                }
                resumes += 1
                logger.debug("chunk body cut, resuming", metadata: [
                    "chunk": "\(chunk)", "source": "\(id)", "chunk.offset": "\(got)", "error": "\(error)"])
            }
        }
    }

    /// One GET of the body from `start` (a chunk's first byte; 0 for servers without Range support) to its end, as
    /// `StreamPlan` decides: from the origin, or from a peer that is the only source. Chunks are cut, hashed (a peer's
    /// checked against the agreed manifest) and journalled as the stream passes their ends; chunks verified earlier
    /// (by a past run, or by the peers of a parallel run that could not finish) are read past without being written.
    /// A peer's corrupt chunk blames it and ends the download: nobody else has the blob.
    func singleStream(_ request: FetchRequest, _ source: Source, _ partial: PartialDownload, from start: Int64 = 0,
                      digests initial: [Int: BlobDigest], counters: TransferCounters, client: OriginClient,
                      peers: PeerView, hashWhole: Bool = false) async throws -> (digests: [Int: BlobDigest], whole: BlobDigest?) {
        let layout = partial.layout
        let info = source.info
        var digests = initial
        var attempt = 0
        var resumes = 0
        // Carried across tries when the server accepts ranges: where the next GET starts (every byte before it was
        // written; a chunk is hashed from the file once its last byte is there).
        var resumeAt: Int64 = info.acceptsRanges ? start : 0
        // Cleared when the server answers a Range with the whole body (its file changed under an If-Range, or it
        // ignores Range while advertising it): every later try asks for the whole body.
        var ranges = info.acceptsRanges
        // Each chunk is hashed from the file on a thread of its own once its last byte is written; with `hashWhole`
        // (the in-order hasher is not running), the whole blob too, from the same reads: nothing then holds pieces for
        // the in-order hasher. That digest is given only when every chunk went through in order from the first.
        let manifest = source.verifyAgainst
        let chunkHasher = ChunkReadBackHasher(partial: partial, wholeInOrder: hashWhole) { chunk, digest in
            if let manifest {
                guard chunk < manifest.count else {
                    throw ModelCacheError.protocolViolation("the manifest of \(request.url) has no digest for chunk \(chunk)")
                }
                guard manifest[chunk] == digest else { throw CorruptChunk(chunk: chunk, expected: manifest[chunk], got: digest) }
            }
            try partial.recordVerified(chunk: chunk, digest: digest)
        }
        defer { chunkHasher.stop() }
        // A peer's chunk that did not match: the peer is blamed, and every byte from that chunk on was for nothing.
        func rejected(_ corrupt: CorruptChunk) -> ModelCacheError {
            counters.discarded(max(0, resumeAt - layout.range(of: corrupt.chunk).lowerBound))
            logger.warning("peer served a corrupt chunk", metadata: [
                "peer": "\(source.id.name)", "chunk": "\(corrupt.chunk)", "expected": "\(corrupt.expected)", "got": "\(corrupt.got)"])
            peers.blame(source.id.name, "served corrupt chunk \(corrupt.chunk)")
            return ModelCacheError.peerRejected(peer: source.id.name,
                                                detail: "corrupt chunk \(corrupt.chunk); no other source holds \(request.url)")
        }
        // A peer must deliver each chunk within `peerChunkTimeout` of the last one (or of its GET's start), as each of
        // its chunks must in a parallel run: one that trickles cannot hold the download for ever. Checked as bytes
        // arrive (a peer that sends nothing at all meets the read timeout). The origin has no such limit.
        let chunkLimit = source.id.kind == .peer ? settings.peerChunkTimeout : nil
        var chunkStarted = ContinuousClock.now
        var streamed: Int64 = 0
        while true {
            attempt += 1
            let from = resumeAt
            do {
                chunkStarted = .now
                try await client.fetch(url: info.requestedURL, range: from > 0 ? from..<layout.size : nil, info: info,
                                       ifRange: from > 0) { buffer, offset in
                    if let chunkLimit, ContinuousClock.now - chunkStarted > chunkLimit { throw ChunkTooSlow(limit: chunkLimit) }
                    var slice = buffer
                    var position = offset
                    while slice.readableBytes > 0 {
                        let chunk = Int(position / layout.chunkSize)
                        // OriginClient.fetch stops a body longer than the size; never index past the last chunk.
                        guard chunk < layout.count else {
                            throw ModelCacheError.protocolViolation("\(source.id) sent more than \(layout.size) bytes for \(request.url)")
                        }
                        let end = layout.range(of: chunk).upperBound
                        let n = Int(min(Int64(slice.readableBytes), end - position))
                        guard let piece = slice.readSlice(length: n) else { break }
                        let needed = digests[chunk] == nil && !partial.isVerified(chunk)
                        if needed {
                            if hashWhole {
                                try piece.withUnsafeReadableBytes { (p: UnsafeRawBufferPointer) throws(ModelCacheError) in try partial.write(p, at: position) }
                            } else {
                                try partial.write(piece, at: position)
                            }
                            streamed += Int64(n)
                            counters.received(n, from: source.id)
                        }
                        position += Int64(n)
                        if position == end {
                            chunkStarted = .now
                            if needed {
                                try chunkHasher.check()
                                chunkHasher.hash(chunk: chunk)
                                streamed = 0
                            }
                        }
                        resumeAt = position
                    }
                }
                digests.merge(try await chunkHasher.drain()) { $1 }
                let whole = await chunkHasher.wholeDigest()
                // Chunks verified by an interrupted parallel run (journalled, digests not at hand): read them back.
                for chunk in 0..<layout.count where digests[chunk] == nil { digests[chunk] = try partial.sha256(ofChunk: chunk) }
                return (digests, whole)
            } catch let caught {
                if let corrupt = caught as? CorruptChunk { throw rejected(corrupt) }
                // A peer that frames its answer against the agreed manifest is blamed and the download ends (nobody
                // else holds the blob). One that ignores Range is read from byte 0 instead (below): every chunk is
                // still checked.
                if source.id.kind == .peer, !(caught is OriginClient.RangeIgnored), let lie = Self.protocolLie(caught) {
                    blameProtocolLie(lie, peer: source.id.name, peers: peers)
                    throw ModelCacheError.peerRejected(peer: source.id.name, detail: "\(lie); no other source holds \(request.url)")
                }
                // A peer too slow for a chunk is tried again after a back-off like any failed try, never resumed at
                // once; it is not blamed (slow is not malicious).
                let tooSlow = caught as? ChunkTooSlow
                let error: any Error = tooSlow.map {
                    ModelCacheError.peerRejected(peer: source.id.name, detail: "no whole chunk within \($0.limit)")
                } ?? caught
                // A body cut after some bytes continues from the last written byte when the server takes ranges
                // (a bounded number of times); otherwise the next try starts over, past the verified chunks.
                if error is OriginClient.RangeIgnored { ranges = false }
                if Task.isCancelled { throw error }
                if tooSlow == nil, ranges, resumeAt > from, resumes < Self.maxResumes, RetryPolicy.isRetryable(error) {
                    resumes += 1
                    attempt -= 1
                    logger.debug("body cut, resuming", metadata: ["url": "\(request.url)", "offset": "\(resumeAt)", "error": "\(error)"])
                    continue
                }
                counters.discarded(streamed)
                streamed = 0
                // The chunks written whole are hashed before anything is asked again.
                do {
                    digests.merge(try await chunkHasher.drain()) { $1 }
                } catch let corrupt as CorruptChunk {
                    throw rejected(corrupt)
                }
                // Start over at the first chunk still missing (the whole body again from a server without ranges).
                let missing = (0..<layout.count).first { digests[$0] == nil && !partial.isVerified($0) }
                resumeAt = ranges ? missing.map { layout.range(of: $0).lowerBound } ?? 0 : 0
                guard let wait = retryPolicy(attempts: settings.scheduler.maxAttempts).retryDelay(
                    after: error, attempt: attempt, sample: .random(in: 0..<1)) else { throw error }
                try await Task.sleep(for: wait)
            }
        }
    }
}
