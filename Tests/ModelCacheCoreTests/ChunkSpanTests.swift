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
        for c in 1...3 { s.release(chunk: c, from: .peer("a")) }
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

    @Test func aQueuedChunkHasNoAgeUntilItsSourceBeginsIt() {
        var s = ChunkScheduler(layout: layout(4), settings: settings())
        s.addSource(.origin, has: nil, connections: 2)
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 0, count: 2))
        #expect(s.next(for: .origin, now: .zero) == .fetch(2))
        #expect(s.next(for: .origin, now: .zero) == .fetch(3))
        // Chunk 1 waits behind chunk 0 in its span: not a stuck transfer, whatever the time.
        #expect(s.expectedRemaining(chunk: 1, now: .seconds(10)) == nil)
        // Chunk 0 has had no byte for 10 s: the origin's spare connection rescues it, not the queued chunk 1.
        #expect(s.next(for: .origin, now: .seconds(10)) == .duplicate(0))
        s.begin(chunk: 1, from: .origin, now: .seconds(10))
        #expect(s.expectedRemaining(chunk: 1, now: .seconds(10) + .milliseconds(100)) == nil)  // too young to judge
        #expect(s.expectedRemaining(chunk: 1, now: .seconds(11)) != nil)
        // Only the span's own source may begin its chunks.
        s.begin(chunk: 2, from: .peer("x"), now: .seconds(10))
        #expect(s.expectedRemaining(chunk: 2, now: .seconds(10)) != nil)
    }

    @Test func whatASpanDoesNotReachGoesBackWithoutAnAttempt() throws {
        var s = ChunkScheduler(layout: layout(8), settings: settings())
        s.addSource(.origin, has: nil, connections: 1)
        #expect(s.next(for: .origin, now: .zero) == .fetchSpan(first: 0, count: 4))
        try s.report(.verified, chunk: 0, from: .origin, now: .milliseconds(10))
        s.begin(chunk: 1, from: .origin, now: .milliseconds(10))
        try s.report(.failed, chunk: 1, from: .origin, now: .milliseconds(20))
        s.release(chunk: 2, from: .origin)
        s.release(chunk: 3, from: .origin)
        #expect(s.attempts == [1: 1])
        // Chunk 1 backs off; the next spans start at chunk 2, given back without a mark against it.
        #expect(s.next(for: .origin, now: .milliseconds(20)) == .fetchSpan(first: 2, count: 4))
        #expect(s.next(for: .origin, now: .milliseconds(20)) == .fetchSpan(first: 6, count: 2))
        #expect(s.next(for: .origin, now: .milliseconds(20)) == .waitUntil(.milliseconds(220)))
        #expect(s.next(for: .origin, now: .milliseconds(220)) == .fetch(1))
    }
}
