import Testing
@testable import ModelCacheCore

/// Spans (issue 12 §1): a source alone is handed consecutive chunks to ask for in one request, fewer as the download
/// nears its end; beside any other source, or in a swarm, chunks go out one at a time.
@Suite struct ChunkSpanTests {
    /// Spans of at most four 16 KiB chunks.
    func settings() -> ChunkScheduler.Settings {
        var s = ChunkScheduler.Settings()
        s.maxSpanBytes = 4 * 16_384
        return s
    }

    @Test func aLoneSourceTakesSpansThatShrinkToItsShareOfWhatIsLeft() {
        var s = ChunkScheduler(layout: layout(10), settings: settings())
        s.addSource(.origin, has: nil, connections: 2)
        // Chunk 0 taken, 9 left: a share of 4 each, so 0...3. Then 5 left (share 2): 4...6. Then 2 (share 1): 7, 8.
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 0, count: 4))
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 4, count: 3))
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 7, count: 2))
        #expect(s.next(for: .origin, now: .zero) == .fetch(9))
        #expect(s.next(for: .origin, now: .zero) == .idle)
        #expect(s.inFlight.count == 10)
    }

    @Test func theSpanNeverExceedsItsBytesNorCrossesAChunkAlreadyHeld() {
        var s = ChunkScheduler(layout: layout(20), alreadyHave: set(20, [6]), settings: settings())
        s.addSource(.origin, has: nil)
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 0, count: 4))
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 4, count: 2))  // chunk 6 is held
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 7, count: 4))
    }

    @Test func theOriginsSpansStopAtAChunkAPeerHolds() {
        var s = ChunkScheduler(layout: layout(10), settings: settings())
        s.addSource(.origin, has: nil, connections: 1)
        s.addSource(.peer("p"), has: set(10, [2, 9]))
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 0, count: 2))
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 3, count: 4))
        #expect(s.next(for: .peer("p"), now: .zero) == .fetch(2))
    }

    @Test func peersShareWhatIsLeftByTheirConnections() {
        var s = ChunkScheduler(layout: layout(10), settings: settings())
        s.addSource(.peer("a"), has: nil, connections: 1)
        s.addSource(.peer("b"), has: nil, connections: 1)
        // 9 chunks left after chunk 0, two connections in all: a share of 4.
        #expect(s.next(for: .peer("a"), now: .zero) == .fetchSpan(first: 0, count: 4))
        #expect(s.next(for: .peer("b"), now: .zero) == .fetchSpan(first: 4, count: 3))
        // A corrupt chunk quarantines its peer; what its span did not reach goes back to the other.
        #expect(throws: Never.self) { try s.report(.corrupt, chunk: 0, from: .peer("a"), now: .zero) }
        s.releaseQueued(span: 0, from: .peer("a"))
        #expect(s.next(for: .peer("b"), now: .zero) == .fetchSpan(first: 0, count: 4))
        #expect(s.quarantined == [.peer("a")])
    }

    @Test func aSwarmMemberTakesOneChunkAtATime() {
        var s = ChunkScheduler(layout: layout(10), settings: settings())
        s.addSource(.origin, has: nil)
        s.swarmSelf = "me"
        #expect(s.next(for: .origin, now: .zero) == .fetch(0))
    }

    @Test func withoutSpanBytesEveryRequestIsOneChunk() {
        var s = ChunkScheduler(layout: layout(10))
        s.addSource(.origin, has: nil)
        #expect(s.next(for: .origin, now: .zero) == .fetch(0))
        #expect(s.next(for: .origin, now: .zero) == .fetch(1))
    }

    /// Four chunks, the origin's two connections: a span of chunks 0-1, then chunks 2 and 3, all handed out at 0 s.
    func twoConnectionsOnFourChunks(sourceLocation: SourceLocation = #_sourceLocation) -> ChunkScheduler {
        var s = ChunkScheduler(layout: layout(4), settings: settings())
        s.addSource(.origin, has: nil, connections: 2)
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 0, count: 2), sourceLocation: sourceLocation)
        #expect(s.next(for: .origin, now: .zero) == .fetch(2), sourceLocation: sourceLocation)
        #expect(s.next(for: .origin, now: .zero) == .fetch(3), sourceLocation: sourceLocation)
        return s
    }

    @Test func aQueuedChunkHasNoAgeUntilItsSourceBeginsIt() {
        var s = twoConnectionsOnFourChunks()
        // Chunk 1 waits behind chunk 0 in its span: it has no age, whatever the time (the end-game never takes it
        // for a stuck transfer).
        #expect(s.expectedRemaining(chunk: 1, now: .seconds(10)) == nil)
        do { let begun = s.begin(chunk: 1, span: 0, from: .origin, now: .seconds(1)); #expect(begun) }
        #expect(s.expectedRemaining(chunk: 1, now: .seconds(1) + .milliseconds(100)) == nil)  // too young to judge
        #expect(s.expectedRemaining(chunk: 1, now: .seconds(2)) != nil)
        // Only the span's own source, and only the span, may begin its chunks; a chunk is begun once.
        do { let begun = s.begin(chunk: 2, span: 2, from: .peer("x"), now: .seconds(10)); #expect(!begun) }
        do { let begun = s.begin(chunk: 2, span: 0, from: .origin, now: .seconds(10)); #expect(!begun) }
        do { let begun = s.begin(chunk: 1, span: 0, from: .origin, now: .seconds(12)); #expect(!begun) }
        #expect(s.expectedRemaining(chunk: 2, now: .seconds(10)) != nil)
    }

    @Test func aStuckSpanLosesItsQueuedChunksFirstThenItsChunkToADuplicate() {
        var s = twoConnectionsOnFourChunks()
        // Chunk 0 has had no byte for 10 s: a spare connection takes the span's queued chunk 1, then rescues chunk 0.
        #expect(s.next(for: .origin, now: .seconds(10)) == .fetch(1))
        #expect(s.next(for: .origin, now: .seconds(10)) == .duplicate(0))
        do { let begun = s.begin(chunk: 1, span: 0, from: .origin, now: .seconds(11)); #expect(!begun) }
    }

    @Test func whatASpanDoesNotReachGoesBackWithoutAnAttempt() throws {
        var s = ChunkScheduler(layout: layout(8), settings: settings())
        s.addSource(.origin, has: nil, connections: 1)
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 0, count: 4))
        try s.report(.verified, chunk: 0, from: .origin, now: .milliseconds(10))
        do { let begun = s.begin(chunk: 1, span: 0, from: .origin, now: .milliseconds(10)); #expect(begun) }
        try s.report(.failed, chunk: 1, from: .origin, now: .milliseconds(20))
        s.releaseQueued(span: 0, from: .origin)
        #expect(s.attempts == [1: 1] && s.queued.isEmpty)
        // Chunk 1 backs off; the next spans start at chunk 2, given back without a mark against it.
        #expect(s.next(for: .origin, now: .milliseconds(20)) == .fetchSpan(first: 2, count: 4))
        #expect(s.next(for: .origin, now: .milliseconds(20)) == .fetchSpan(first: 6, count: 2))
        #expect(s.next(for: .origin, now: .milliseconds(20)) == .waitUntil(.milliseconds(220)))
        #expect(s.next(for: .origin, now: .milliseconds(220)) == .fetch(1))
    }

    @Test func anIdleConnectionTakesTheLastQueuedChunkOfASlowSpan() throws {
        var s = ChunkScheduler(layout: layout(8), settings: settings())
        s.addSource(.origin, has: nil, connections: 2)
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 0, count: 4))
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 4, count: 2))
        #expect(s.next(for: .origin, now: .zero) == .fetch(6))
        #expect(s.next(for: .origin, now: .zero) == .fetch(7))
        // The span at 4 finishes; the one at 0 crawls: a quarter of chunk 0 in 1 s (3 s left).
        for c in [4, 6, 7] { try s.report(.verified, chunk: c, from: .origin, now: .milliseconds(300)) }
        do { let begun = s.begin(chunk: 5, span: 4, from: .origin, now: .milliseconds(300)); #expect(begun) }
        try s.report(.verified, chunk: 5, from: .origin, now: .milliseconds(600))
        s.progress(chunk: 0, from: .origin, bytes: 4_096)
        // At 1 s chunk 0, the chunk the span is receiving, needs 3 s more: the span's queued chunks are taken from
        // its tail.
        #expect(s.next(for: .origin, now: .seconds(1)) == .fetch(3))  // the span's tail first
        #expect(s.next(for: .origin, now: .seconds(1)) == .fetch(2))
        #expect(s.queued == [1: 0])
        // The span reaches chunk 1 (its own) and then chunk 2, taken: it ends there.
        try s.report(.verified, chunk: 0, from: .origin, now: .seconds(2))
        do { let begun = s.begin(chunk: 1, span: 0, from: .origin, now: .seconds(2)); #expect(begun) }
        do { let begun = s.begin(chunk: 2, span: 0, from: .origin, now: .seconds(3)); #expect(!begun) }
    }

    @Test func aSpanMovingWellKeepsItsChunks() {
        var s = ChunkScheduler(layout: layout(6), settings: settings())
        s.addSource(.origin, has: nil, connections: 2)
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 0, count: 3))
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 3, count: 2))
        #expect(s.next(for: .origin, now: .zero) == .fetch(5))
        // Chunks 0 and 3 are three quarters in after 0.6 s (0.2 s left each): nobody takes chunk 2 or 4.
        s.progress(chunk: 0, from: .origin, bytes: 12_288)
        s.progress(chunk: 3, from: .origin, bytes: 12_288)
        s.progress(chunk: 5, from: .origin, bytes: 12_288)
        #expect(s.next(for: .origin, now: .milliseconds(600)) == .idle)
        #expect(s.queued == [1: 0, 2: 0, 4: 3])
    }

    @Test func theOriginNeverTakesAPeersQueuedChunk() {
        var s = ChunkScheduler(layout: layout(6), settings: settings())
        s.addSource(.peer("a"), has: nil, connections: 1)
        s.addSource(.origin, has: nil, connections: 1)
        #expect(s.next(for: .peer("a"), now: .zero) == .fetchSpan(first: 0, count: 4))
        #expect(s.next(for: .peer("a"), now: .zero) == .fetchSpan(first: 4, count: 2))
        // Chunk 0 has had no byte for 5 s: the origin may rescue it (the end-game), never take the peer's queued ones.
        #expect(s.next(for: .origin, now: .seconds(5)) == .duplicate(0))
        #expect(s.queued == [1: 0, 2: 0, 3: 0, 5: 4])
    }
}
