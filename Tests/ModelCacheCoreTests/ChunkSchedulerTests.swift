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

    /// A peer stalled on all its connections: after its first failure it takes no new chunk while its other chunks
    /// are in flight, so they report first and quarantine it; their chunks go to the origin at once.
    @Test func aFailedPeerWaitsForItsOtherChunksBeforeNewWork() throws {
        var s = ChunkScheduler(layout: layout(8))
        let p = SourceID.peer("stalled")
        s.addSource(.origin, has: nil)
        s.addSource(p, has: nil)
        for c in 0..<4 { #expect(s.next(for: p, now: t0) == .fetch(c)) }
        #expect(s.next(for: .origin, now: t0) == .idle)  // the peer holds every chunk
        try s.report(.failed, chunk: 0, from: p, now: .seconds(5))
        #expect(s.next(for: p, now: .seconds(6)) == .idle)  // long after the back-off: chunks 1...3 still out
        try s.report(.failed, chunk: 1, from: p, now: .seconds(7))
        #expect(s.next(for: p, now: .seconds(8)) == .idle)
        try s.report(.failed, chunk: 2, from: p, now: .seconds(9))
        #expect(s.next(for: p, now: .seconds(9)) == .retire)
        #expect(s.inFlight.keys.sorted() == [3])
        // Chunk 3 is still the peer's; the rest is the origin's (chunks 0 and 1 back off first: they failed while
        // the peer was not yet known bad).
        #expect(s.next(for: .origin, now: .seconds(9)) == .fetch(0))
        #expect(s.next(for: .origin, now: .seconds(9)) == .fetch(1))
        #expect(s.next(for: .origin, now: .seconds(9)) == .fetch(2))
        #expect(s.next(for: .origin, now: .seconds(9)) == .fetch(4))
    }

    /// A sound peer with one failure goes on once another of its chunks verifies; with nothing else in flight it
    /// waits out the back-off of its failures in a row.
    @Test func aPeerWithOneFailureGoesOnAfterAVerifiedChunkOrItsBackOff() throws {
        var t = ChunkScheduler(layout: layout(4))
        let p = SourceID.peer("flaky")
        t.addSource(p, has: nil)
        #expect(t.next(for: p, now: t0) == .fetch(0))
        #expect(t.next(for: p, now: t0) == .fetch(1))
        try t.report(.failed, chunk: 0, from: p, now: t0)
        #expect(t.next(for: p, now: t0) == .idle)
        try t.report(.verified, chunk: 1, from: p, now: t0)
        #expect(t.next(for: p, now: t0) == .fetch(2))  // chunk 0 itself still backs off
        try t.report(.failed, chunk: 2, from: p, now: .seconds(1))
        #expect(t.next(for: p, now: .seconds(1)) == .waitUntil(.seconds(1) + .milliseconds(200)))
        #expect(t.next(for: p, now: .seconds(1) + .milliseconds(200)) == .fetch(0))
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
    @Test func membersSplitTheOriginsWorkWithoutOverlap() {
        let members = ["aaaa", "bbbb", "cccc", "dddd"]
        // Every node computes the same owner for a chunk; each member owns about a quarter.
        let owners = (0..<400).map { c in members.max { (ChunkScheduler.weight($0, c), $0) < (ChunkScheduler.weight($1, c), $1) }! }
        for m in members {
            let share = owners.filter { $0 == m }.count
            #expect(share > 60 && share < 140, "\(m) owns \(share) of 400")
        }
    }

    @Test func theOriginWalksOwnChunksFirstThenStealsFromTheEnd() {
        var s = ChunkScheduler(layout: layout(6))
        s.addSource(.origin, has: nil)
        s.swarmSelf = "aaaa"
        s.updatePeer(.peer("b"), has: set(6, []), claims: set(6, []), swarmID: "bbbb")
        let own = (0..<6).filter { c in ChunkScheduler.weight("aaaa", c) > ChunkScheduler.weight("bbbb", c) }
        let others = (0..<6).filter { !own.contains($0) }
        var got: [Int] = []
        for _ in 0..<6 { if case .fetch(let c) = s.next(for: .origin, now: .zero) { got.append(c) } }
        #expect(got == own + others.reversed())
    }

    @Test func aLateMemberTakesOnlyItsShare() {
        func owner(_ c: Int, _ members: [String]) -> String {
            members.max { (ChunkScheduler.weight($0, c), $0) < (ChunkScheduler.weight($1, c), $1) }!
        }
        let before = ["aaaa", "bbbb", "cccc"], after = before + ["dddd"]
        let moved = (0..<400).filter { owner($0, before) != owner($0, after) }
        // Only chunks that the newcomer now owns change hands.
        #expect(moved.allSatisfy { owner($0, after) == "dddd" })
        #expect(moved.count > 60 && moved.count < 140)
    }
}
