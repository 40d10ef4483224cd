import Testing
@testable import ModelCacheCore

/// A layout of `chunks` 16 KiB chunks.
func layout(_ chunks: Int) -> ChunkLayout { try! ChunkLayout(size: Int64(chunks) * 16_384, chunkSize: 16_384) }

func set(_ capacity: Int, _ members: [Int]) -> ChunkSet {
    var s = ChunkSet(capacity: capacity)
    for m in members { s.insert(m) }
    return s
}

@Suite struct ChunkSchedulerTests {
    let t0 = Duration.zero

    @Test func originAloneFetchesInOrderAndFinishes() throws {
        var s = ChunkScheduler(layout: layout(3))
        s.addSource(.origin, has: nil)
        #expect(s.next(for: .origin, now: t0) == .fetch(0))
        #expect(s.next(for: .origin, now: t0) == .fetch(1))
        #expect(s.next(for: .origin, now: t0) == .fetch(2))
        #expect(s.next(for: .origin, now: t0) == .idle)
        for c in 0..<3 { try s.report(.verified, chunk: c, from: .origin, now: t0) }
        #expect(s.isFinished)
        #expect(s.next(for: .origin, now: t0) == .finished)
    }

    @Test func resumedChunksAreSkipped() {
        var s = ChunkScheduler(layout: layout(3), alreadyHave: set(3, [0, 1]))
        s.addSource(.origin, has: nil)
        #expect(s.next(for: .origin, now: t0) == .fetch(2))
    }

    @Test func originLeavesToPeersWhatPeersHold() {
        var s = ChunkScheduler(layout: layout(4))
        s.addSource(.origin, has: nil)
        s.addSource(.peer("a"), has: set(4, [0, 1]))
        #expect(s.next(for: .origin, now: t0) == .fetch(2))
        #expect(s.next(for: .origin, now: t0) == .fetch(3))
        #expect(s.next(for: .origin, now: t0) == .idle)
        #expect(s.next(for: .peer("a"), now: t0) == .fetch(0))
    }

    @Test func peersTakeTheRarestChunkFirst() {
        var s = ChunkScheduler(layout: layout(3))
        s.addSource(.peer("a"), has: set(3, [0, 1, 2]))
        s.addSource(.peer("b"), has: set(3, [0, 2]))
        // Chunk 1 is held by one peer only.
        #expect(s.next(for: .peer("a"), now: t0) == .fetch(1))
        #expect(s.next(for: .peer("b"), now: t0) == .fetch(0))
    }

    @Test func corruptChunkQuarantinesPeerAndGoesElsewhere() throws {
        var s = ChunkScheduler(layout: layout(2))
        s.addSource(.origin, has: nil)
        s.addSource(.peer("liar"), has: set(2, [0, 1]))
        #expect(s.next(for: .peer("liar"), now: t0) == .fetch(0))
        try s.report(.corrupt, chunk: 0, from: .peer("liar"), now: t0)
        #expect(s.quarantined == [.peer("liar")])
        #expect(s.next(for: .peer("liar"), now: t0) == .retire)
        // With the liar gone, the origin takes both chunks at once (no backoff for a blamed peer's chunk).
        #expect(s.next(for: .origin, now: t0) == .fetch(0))
        #expect(s.next(for: .origin, now: t0) == .fetch(1))
    }

    @Test func failedChunkBacksOffExponentiallyThenGivesUp() throws {
        var settings = ChunkScheduler.Settings()
        settings.maxAttempts = 3
        settings.retryBaseDelay = .milliseconds(100)
        var s = ChunkScheduler(layout: layout(1), settings: settings)
        s.addSource(.origin, has: nil)
        #expect(s.next(for: .origin, now: t0) == .fetch(0))
        try s.report(.failed, chunk: 0, from: .origin, now: t0)
        #expect(s.next(for: .origin, now: .milliseconds(50)) == .waitUntil(.milliseconds(100)))
        #expect(s.next(for: .origin, now: .milliseconds(100)) == .fetch(0))
        try s.report(.failed, chunk: 0, from: .origin, now: .milliseconds(100))
        #expect(s.next(for: .origin, now: .milliseconds(250)) == .waitUntil(.milliseconds(300)))
        #expect(s.next(for: .origin, now: .milliseconds(300)) == .fetch(0))
        #expect(throws: ChunkScheduler.Failure.chunkExhausted(chunk: 0, attempts: 3)) {
            try s.report(.failed, chunk: 0, from: .origin, now: .milliseconds(300))
        }
    }

    @Test func peerWithRepeatedFailuresIsQuarantined() throws {
        var s = ChunkScheduler(layout: layout(4))
        s.addSource(.peer("flaky"), has: nil)
        for i in 0..<3 {
            #expect(s.next(for: .peer("flaky"), now: .seconds(i * 20)) != .retire)
            let chunk = s.inFlight.first!.key
            try s.report(.failed, chunk: chunk, from: .peer("flaky"), now: .seconds(i * 20))
        }
        #expect(s.next(for: .peer("flaky"), now: .seconds(100)) == .retire)
        #expect(throws: ChunkScheduler.Failure.self) { try s.checkProgressPossible() }
    }

    @Test func noSourceForChunksNoOneHolds() throws {
        var s = ChunkScheduler(layout: layout(3))
        s.addSource(.peer("a"), has: set(3, [0]))
        #expect(s.next(for: .peer("a"), now: t0) == .fetch(0))
        try s.checkProgressPossible()  // something is in flight: not stuck yet
        try s.report(.verified, chunk: 0, from: .peer("a"), now: t0)
        #expect(throws: ChunkScheduler.Failure.noSourceFor(chunks: [1, 2])) { try s.checkProgressPossible() }
    }

    @Test func staleReportsAreIgnoredAndReleaseReturnsWork() throws {
        var s = ChunkScheduler(layout: layout(2))
        s.addSource(.origin, has: nil)
        #expect(s.next(for: .origin, now: t0) == .fetch(0))
        s.release(chunk: 0, from: .origin)
        try s.report(.verified, chunk: 0, from: .peer("x"), now: t0)  // never assigned to x: ignored
        #expect(!s.done.contains(0))
        #expect(s.next(for: .origin, now: t0) == .fetch(0))
    }
}

@Suite struct SwarmPlanningTests {

    @Test func originSkipsChunksPeersHoldOrClaim() {
        var s = ChunkScheduler(layout: layout(6))
        s.addSource(.origin, has: nil)
        s.updatePeer(.peer("b"), has: set(6, [0]), claims: set(6, [1, 2]))
        #expect(s.next(for: .origin, now: .zero) == .fetch(3))
        #expect(s.next(for: .origin, now: .zero) == .fetch(4))
        #expect(s.next(for: .origin, now: .zero) == .fetch(5))
        #expect(s.next(for: .origin, now: .zero) == .idle)  // 1 and 2 will come from b soon
        #expect(s.next(for: .peer("b"), now: .zero) == .fetch(0))
        // b finished chunk 1: it is now held, and taken from b.
        s.updatePeer(.peer("b"), has: set(6, [0, 1]), claims: set(6, [2]))
        #expect(s.next(for: .peer("b"), now: .zero) == .fetch(1))
    }

    @Test func expiredClaimsGoBackToTheOrigin() {
        var s = ChunkScheduler(layout: layout(2))
        s.addSource(.origin, has: nil)
        s.updatePeer(.peer("b"), has: set(2, []), claims: set(2, [0, 1]))
        #expect(s.next(for: .origin, now: .zero) == .idle)
        // The peer's claims lapsed (it stalled or left): the origin takes the chunks.
        s.updatePeer(.peer("b"), has: set(2, []), claims: set(2, []))
        #expect(s.next(for: .origin, now: .zero) == .fetch(0))
        s.removeSource(.peer("b"))
        #expect(s.next(for: .origin, now: .zero) == .fetch(1))
    }

    @Test func nodesStartTheirOriginWalkApart() {
        var settings = ChunkScheduler.Settings()
        settings.originStart = 5
        var s = ChunkScheduler(layout: layout(8), settings: settings)
        s.addSource(.origin, has: nil)
        #expect([s.next(for: .origin, now: .zero), s.next(for: .origin, now: .zero), s.next(for: .origin, now: .zero),
                 s.next(for: .origin, now: .zero)] == [.fetch(5), .fetch(6), .fetch(7), .fetch(0)])
    }

    @Test func waitingForAClaimIsNotStuck() throws {
        var s = ChunkScheduler(layout: layout(2))
        s.updatePeer(.peer("b"), has: set(2, []), claims: set(2, [0, 1]))
        try s.checkProgressPossible()  // b may deliver
        s.updatePeer(.peer("b"), has: set(2, []), claims: set(2, []))
        #expect(throws: ChunkScheduler.Failure.self) { try s.checkProgressPossible() }
    }
}

@Suite struct SwarmSplitTests {
    @Test func membersSplitTheOriginsWorkThenStealFromTheEnd() {
        var s = ChunkScheduler(layout: layout(6))
        s.addSource(.origin, has: nil)
        s.swarmSelf = "aaaa"
        s.updatePeer(.peer("b"), has: ChunkSet(capacity: 6), claims: ChunkSet(capacity: 6), swarmID: "bbbb")
        // Sorted members [aaaa, bbbb]: this node owns the even chunks.
        #expect(s.next(for: .origin, now: .zero) == .fetch(0))
        #expect(s.next(for: .origin, now: .zero) == .fetch(2))
        #expect(s.next(for: .origin, now: .zero) == .fetch(4))
        // Then the peer's chunks that nobody holds or fetches, from the end.
        #expect(s.next(for: .origin, now: .zero) == .fetch(5))
    }
}

@Suite struct TokenBucketTests {
    @Test func burstThenSteadyRate() {
        var b = TokenBucket(bytesPerSecond: 1000, burst: 500)
        #expect(b.take(500, now: .zero) == .zero)               // the burst
        #expect(b.take(100, now: .zero) == .milliseconds(100))  // 100 bytes at 1000 B/s
        // One second later the bucket refilled (capped at the burst).
        #expect(b.take(400, now: .seconds(1)) == .zero)
        #expect(b.take(200, now: .seconds(1)) == .milliseconds(100))
    }

    @Test func longRunAverageIsTheRate() {
        var b = TokenBucket(bytesPerSecond: 10_000, burst: 1000)
        var now = Duration.zero
        for _ in 0..<100 { now += b.take(1000, now: now) }  // 100 kB sent back to back
        #expect(now >= .milliseconds(9_800) && now <= .milliseconds(10_000))
    }
}
