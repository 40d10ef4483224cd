import Crypto
import ModelCacheCore
import NIOCore
import Synchronization

extension FetchEngine {
    /// Fetches a span of consecutive chunks (`ChunkScheduler.Decision.fetchSpan`) in one Range GET. The body is cut at
    /// each chunk's end as it passes: the chunk is hashed, checked against its expected digest (a peer's), reported
    /// verified and journalled before the next one begins, exactly as a chunk fetched alone.
    ///
    /// A body cut mid-way continues from the byte where it stopped (a bounded number of times), with the current
    /// chunk's running hash kept. When it cannot, the current chunk fails as a single chunk's fetch would (blame,
    /// back-off, another source) and the chunks of the span not reached yet are given back, without counting an
    /// attempt. When another copy of the current chunk wins (an end-game duplicate of a stalled transfer), the GET is
    /// cancelled and the rest of the span is given back.
    func fetchSpan(_ span: Range<Int>, _ source: Source, run: ChunkRun, client: OriginClient, partial: PartialDownload,
                   counters: TransferCounters, peers: PeerView) async throws {
        let id = source.id
        let cursor = SpanCursor(first: span.lowerBound)
        do {
            let limit = id.kind == .peer ? settings.peerChunkTimeout * span.count : nil
            try await withSpanLossWatch(run, cursor, id, end: span.upperBound) {
                try await self.withDeadline(limit, peer: id.name) {
                    try await self.streamSpan(span, source, run: run, client: client, partial: partial,
                                              counters: counters, cursor: cursor)
                }
            }
        } catch {
            let chunk = cursor.current
            guard chunk < span.upperBound else {
                if let e = error as? SpanSettleFailure { throw e.underlying }
                return
            }
            await run.releaseQueued(span: span.lowerBound, from: id)
            if let e = error as? SpanSettleFailure { throw e.underlying }
            // Another source took the span's next chunk: the span ends here, nothing failed.
            if error is SpanTaken { return }
            let underlying = (error as? ChunkFetchError)?.underlying ?? error
            counters.discarded(cursor.bytes)
            if await !run.isFetching(chunk: chunk, by: id) {  // another copy won: no failure, no blame
                logger.info("end-game: a span's chunk was taken over", metadata: [
                    "chunk": "\(chunk)", "source": "\(id)", "span.end": "\(span.upperBound)"])
                return
            }
            // Its next attempt starts again from the chunk's first byte.
            partial.abandon(chunk: chunk)
            let corrupt = underlying as? CorruptChunk
            try await chunkFailed(chunk, from: id, corrupt.map { .corrupt(expected: $0.expected, got: $0.got) } ?? .failed(underlying),
                                  run: run, peers: peers)
        }
    }

    /// The GET (and its resumes) of a span; `cursor` says which chunk is on its way, for the loss watch and for the
    /// caller when this throws.
    private func streamSpan(_ span: Range<Int>, _ source: Source, run: ChunkRun, client: OriginClient,
                            partial: PartialDownload, counters: TransferCounters, cursor: SpanCursor) async throws {
        let layout = partial.layout
        let id = source.id
        let end = layout.range(of: span.upperBound - 1).upperBound
        var chunk = span.lowerBound
        var got: Int64 = 0  // bytes of `chunk` so far
        var hasher = SHA256()
        var writer = partial.beginWriting(chunk: chunk)
        var resumes = 0
        while chunk < span.upperBound {
            let before = (chunk, got)
            do {
                try await client.fetch(url: source.info.requestedURL, range: layout.range(of: chunk).lowerBound + got..<end,
                                       info: source.info, ifRange: resumes > 0) { buffer, offset in
                    var slice = buffer
                    var position = offset
                    while slice.readableBytes > 0 {
                        // OriginClient.fetch checks Content-Range and stops a longer body: `position` stays in the span.
                        guard chunk < span.upperBound else {
                            throw ModelCacheError.protocolViolation("\(id) sent more than the \(end) bytes asked")
                        }
                        let chunkEnd = layout.range(of: chunk).upperBound
                        let n = Int(min(Int64(slice.readableBytes), chunkEnd - position))
                        guard let piece = slice.readSlice(length: n) else { break }
                        try partial.write(piece, at: position, chunk: chunk, writer: writer)
                        piece.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                        got += Int64(n)
                        position += Int64(n)
                        counters.received(n, from: id)
                        cursor.setBytes(got)
                        run.noteBytes(chunk: chunk, from: id, bytes: got)
                        guard position == chunkEnd else { continue }
                        let digest = BlobDigest(hasher.finalize())
                        if let expected = source.verifyAgainst?[chunk], expected != digest {
                            throw CorruptChunk(chunk: chunk, expected: expected, got: digest)
                        }
                        try await settle(chunk, digest, id, run: run, partial: partial, counters: counters, cursor: cursor)
                        chunk += 1
                        got = 0
                        hasher = SHA256()
                        if chunk < span.upperBound {
                            guard await run.begin(chunk: chunk, span: span.lowerBound, from: id) else { throw SpanTaken() }
                            writer = partial.beginWriting(chunk: chunk)
                        }
                    }
                }
            } catch {
                // A chunk that did not match, a copy that lost its race, a journal that cannot be written: no resume.
                if error is CorruptChunk || error is SpanSettleFailure || error is SpanTaken || error is PartialDownload.LostChunk {
                    throw error
                }
                // Continue only when this try moved bytes (a resume must make progress), a bounded number of times.
                guard chunk < span.upperBound, (chunk, got) > before, resumes < Self.maxResumes, !Task.isCancelled,
                      RetryPolicy.resumesInPlace(after: error, fromPeer: id.kind == .peer) else { throw error }
                resumes += 1
                logger.debug("span body cut, resuming", metadata: [
                    "chunk": "\(chunk)", "source": "\(id)", "chunk.offset": "\(got)", "error": "\(error)"])
            }
        }
    }

    /// A chunk of a span is whole and matches: reported verified and journalled (a copy that lost the race to an
    /// end-game duplicate is counted as discarded), and the cursor moves to the next chunk. Failures here end the
    /// download, as they do for a single chunk (the cursor stays marked as settling: its loss watch must not take the
    /// chunk, done in the scheduler, for one lost).
    private func settle(_ chunk: Int, _ digest: BlobDigest, _ id: SourceID, run: ChunkRun, partial: PartialDownload,
                        counters: TransferCounters, cursor: SpanCursor) async throws {
        cursor.settling(true)
        do {
            if try await run.verified(chunk: chunk, digest: digest, from: id) {
                try partial.recordVerified(chunk: chunk, digest: digest)
            } else {
                counters.discarded(partial.layout.length(of: chunk))
            }
        } catch {
            throw SpanSettleFailure(underlying: error)
        }
        cursor.advance(to: chunk + 1)
        cursor.settling(false)
    }

    /// Runs a span's fetch until it ends, or until another copy of the chunk it is receiving wins (then the fetch is
    /// cancelled and this throws `LostChunk`).
    private func withSpanLossWatch(_ run: ChunkRun, _ cursor: SpanCursor, _ id: SourceID, end: Int,
                                   _ body: @escaping @Sendable () async throws -> Void) async throws {
        enum Outcome: Sendable { case done, lost, watchEnded }
        let lost: Bool = try await withThrowingTaskGroup(of: Outcome.self) { group in
            group.addTask { try await body(); return .done }
            group.addTask {
                while !Task.isCancelled {
                    let chunk = cursor.current
                    // Every chunk settled: nothing left to lose (the body is returning).
                    guard chunk < end else { return .watchEnded }
                    await run.waitUntilLost(chunk: chunk, by: id)
                    // Not fetching any more because this span settled it (and moved on) is no loss.
                    if !Task.isCancelled, cursor.current == chunk, !cursor.isSettling { return .lost }
                    if cursor.current == chunk { try? await Task.sleep(for: .milliseconds(5)) }
                }
                return .watchEnded
            }
            defer { group.cancelAll() }
            while let outcome = try await group.next() {
                switch outcome {
                case .done: return false
                case .lost: return true
                case .watchEnded: continue  // the body decides
                }
            }
            return false
        }
        if lost { throw PartialDownload.LostChunk(chunk: cursor.current) }
    }
}

/// Where a span's fetch is: the chunk whose bytes are arriving and how many of them have, shared with its loss
/// watch and read by its caller when the fetch throws.
final class SpanCursor: Sendable {
    private let chunk: Atomic<Int>
    private let received = Atomic<Int64>(0)
    private let inSettle = Atomic<Bool>(false)

    init(first: Int) { chunk = Atomic(first) }

    var current: Int { chunk.load(ordering: .acquiring) }
    var bytes: Int64 { received.load(ordering: .relaxed) }
    var isSettling: Bool { inSettle.load(ordering: .acquiring) }
    func setBytes(_ n: Int64) { received.store(n, ordering: .relaxed) }
    func advance(to next: Int) {
        received.store(0, ordering: .relaxed)
        chunk.store(next, ordering: .releasing)
    }
    func settling(_ on: Bool) { inSettle.store(on, ordering: .releasing) }
}

/// A peer's chunk (of a span, or of a stream) that did not match the digest the peers agreed on.
struct CorruptChunk: Error, CustomStringConvertible {
    var chunk: Int
    var expected: BlobDigest
    var got: BlobDigest
    var description: String { "chunk \(chunk)'s digest \(got) where \(expected) was expected" }
}

/// The span's next chunk was taken by a source with nothing else to do: the span's request ends there.
struct SpanTaken: Error {}

/// A failure to record a verified chunk (the journal): it ends the download.
struct SpanSettleFailure: Error {
    var underlying: any Error
}
