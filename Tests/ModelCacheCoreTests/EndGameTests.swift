import Testing
@testable import ModelCacheCore

/// A scheduler over `chunks` chunks whose only source, the origin, has been handed chunks 0..<`fetching` in order.
func originFetching(_ fetching: Int, of chunks: Int, settings: ChunkScheduler.Settings = .init(),
                    sourceLocation: SourceLocation = #_sourceLocation) -> ChunkScheduler {
    var s = ChunkScheduler(layout: layout(chunks), settings: settings)
    s.addSource(.origin, has: nil)
    for i in 0..<fetching { #expect(s.next(for: .origin, now: .zero) == .fetch(i), sourceLocation: sourceLocation) }
    return s
}

/// The swarm end-game (issue 12 §4): a source with nothing left to claim duplicates the in-flight chunk expected to
/// finish last; the first verified copy wins and the other is named for cancellation. Deterministic: every `now` is
/// given.
@Suite struct EndGameTests {
    let ms = { (n: Int) in Duration.milliseconds(n) }
    let chunk = Int64(16_384)

    /// Two chunks, both in flight from the origin.
    func twoInFlight() -> ChunkScheduler { originFetching(2, of: 2) }

    @Test func anIdleSourceDuplicatesTheChunkExpectedToFinishLast() {
        var s = twoInFlight()
        s.addSource(.peer("p"), has: set(2, [0, 1]))
        // At 1 s, chunk 0 has three quarters of its bytes (1/3 s left), chunk 1 a quarter (3 s left).
        s.progress(chunk: 0, from: .origin, bytes: chunk * 3 / 4)
        s.progress(chunk: 1, from: .origin, bytes: chunk / 4)
        #expect(s.expectedRemaining(chunk: 1, now: ms(1000)) == .seconds(3))
        #expect(s.next(for: .peer("p"), now: ms(1000)) == .duplicate(1))
        #expect(s.duplicates == [1: .peer("p")])
        // At most one duplicate per chunk; chunk 0 ends in 1/3 s, under the 0.5 s the end-game needs.
        #expect(s.next(for: .peer("p"), now: ms(1000)) == .idle)
    }

    @Test func nothingIsDuplicatedBeforeItsFetchHasAnEstimate() {
        var s = twoInFlight()
        s.addSource(.peer("p"), has: set(2, [0, 1]))
        // No byte yet and younger than the 0.5 s minimum: no estimate, no duplicate.
        #expect(s.next(for: .peer("p"), now: ms(100)) == .idle)
        // Still no byte after 0.6 s: treated as stuck.
        #expect(s.next(for: .peer("p"), now: ms(600)) == .duplicate(0))
    }

    @Test func theFirstVerifiedCopyWinsAndTheOtherIsNamedForCancellation() throws {
        var s = twoInFlight()
        s.addSource(.peer("p"), has: set(2, [0, 1]))
        s.progress(chunk: 0, from: .origin, bytes: chunk - 1)
        s.progress(chunk: 1, from: .origin, bytes: 1)
        #expect(s.next(for: .peer("p"), now: ms(1000)) == .duplicate(1))
        // The duplicate is verified first: the origin's copy lost.
        #expect(try s.report(.verified, chunk: 1, from: .peer("p"), now: ms(1200)) == .origin)
        #expect(s.servedBy[1] == .peer("p"))
        #expect(!s.isFetching(chunk: 1, by: .origin))
        // The loser's late report changes nothing and counts no failure (no attempt, no blame).
        #expect(try s.report(.failed, chunk: 1, from: .origin, now: ms(1300)) == nil)
        #expect(s.attempts[1] == nil)
        #expect(s.duplicates.isEmpty)
        try s.report(.verified, chunk: 0, from: .origin, now: ms(1400))
        #expect(s.isFinished)
    }

    @Test func whenTheFirstCopyWinsTheDuplicateIsCancelled() throws {
        var s = twoInFlight()
        s.addSource(.peer("p"), has: set(2, [0, 1]))
        #expect(s.next(for: .peer("p"), now: ms(700)) == .duplicate(0))
        #expect(try s.report(.verified, chunk: 0, from: .origin, now: ms(800)) == .peer("p"))
        #expect(!s.isFetching(chunk: 0, by: .peer("p")))
        #expect(try s.report(.verified, chunk: 0, from: .peer("p"), now: ms(900)) == nil)  // too late: ignored
        #expect(s.servedBy[0] == .origin)
    }

    @Test func aFailedFirstCopyLeavesItsDuplicateAsTheChunksFetch() throws {
        var s = twoInFlight()
        s.addSource(.peer("p"), has: set(2, [0, 1]))
        #expect(s.next(for: .peer("p"), now: ms(700)) == .duplicate(0))
        try s.report(.failed, chunk: 0, from: .origin, now: ms(800))
        #expect(s.inFlight[0] == .peer("p"))
        #expect(s.duplicates.isEmpty)
        // Not handed out again beside it (its fetch is 0.1 s old: no estimate yet).
        #expect(s.next(for: .origin, now: ms(900)) == .idle)
        try s.report(.verified, chunk: 0, from: .peer("p"), now: ms(900))
        #expect(s.servedBy[0] == .peer("p"))
    }

    @Test func aFailedDuplicateCostsTheChunkNothing() throws {
        var s = twoInFlight()
        s.addSource(.peer("p"), has: set(2, [0, 1]))
        #expect(s.next(for: .peer("p"), now: ms(700)) == .duplicate(0))
        try s.report(.failed, chunk: 0, from: .peer("p"), now: ms(800))
        #expect(s.attempts[0] == nil)
        #expect(s.inFlight[0] == .origin)
        #expect(s.duplicates.isEmpty)
    }

    @Test func anotherPeerHoldingTheChunkIsPreferredOverTheOrigin() throws {
        var s = ChunkScheduler(layout: layout(2))
        s.addSource(.origin, has: nil)
        s.addSource(.peer("slow"), has: set(2, [0, 1]))
        s.addSource(.peer("other"), has: set(2, [0, 1]))
        #expect(s.next(for: .peer("slow"), now: .zero) == .fetch(0))
        #expect(s.next(for: .peer("other"), now: .zero) == .fetch(1))
        // Chunk 0 trickles from "slow"; "other" holds it verified, so the origin leaves it to "other".
        #expect(s.next(for: .origin, now: ms(2000)) == .idle)
        try s.report(.verified, chunk: 1, from: .peer("other"), now: ms(100))
        #expect(s.next(for: .peer("other"), now: ms(2000)) == .duplicate(0))
        // A chunk only the slow peer holds is the origin's to duplicate, once it has stalled: not while it may still
        // come from the LAN (2 s without a byte), but after 5 s in flight with at least 5 s to go.
        var t = try peerSendingTheLastChunk()
        #expect(t.next(for: .origin, now: ms(2000)) == .idle)
        #expect(t.next(for: .origin, now: ms(5000)) == .duplicate(0))
    }

    /// Two chunks: chunk 0 in flight from peer "p" (the only peer holding it), chunk 1 verified from the origin.
    func peerSendingTheLastChunk() throws -> ChunkScheduler {
        var s = ChunkScheduler(layout: layout(2))
        s.addSource(.origin, has: nil)
        s.addSource(.peer("p"), has: set(2, [0]))
        #expect(s.next(for: .peer("p"), now: .zero) == .fetch(0))
        #expect(s.next(for: .origin, now: .zero) == .fetch(1))
        try s.report(.verified, chunk: 1, from: .origin, now: ms(100))
        return s
    }

    @Test func theOriginLeavesAPeerThatIsSlowButMovingToFinish() throws {
        var s = try peerSendingTheLastChunk()
        // At 1 s the peer has sent a tenth of chunk 0 (9 s to go): the origin would be faster, but 1 s is no stall.
        s.progress(chunk: 0, from: .peer("p"), bytes: chunk / 10)
        #expect(s.next(for: .origin, now: ms(1000)) == .idle)
        // At 6 s it has sent 60% (4 s to go, under the 5 s a stall needs): still the peer's.
        s.progress(chunk: 0, from: .peer("p"), bytes: chunk * 6 / 10)
        #expect(s.next(for: .origin, now: ms(6000)) == .idle)
        // A peer that crawls (at 6 s, a tenth: 54 s to go) is duplicated from the origin.
        var t = try peerSendingTheLastChunk()
        t.progress(chunk: 0, from: .peer("p"), bytes: chunk / 10)
        #expect(t.next(for: .origin, now: ms(6000)) == .duplicate(0))
    }

    @Test func theOriginMayRescueItsOwnStuckChunkButAPeerDoesNotDuplicateItself() throws {
        var s = twoInFlight()
        try s.report(.verified, chunk: 1, from: .origin, now: ms(100))
        // Chunk 0 has had no byte for 2 s: not yet (connections to one origin share its bottleneck); after 5 s in
        // flight without a byte, another origin connection fetches it again.
        #expect(s.next(for: .origin, now: ms(2000)) == .idle)
        #expect(s.next(for: .origin, now: ms(5000)) == .duplicate(0))
        var t = ChunkScheduler(layout: layout(1))
        t.addSource(.peer("p"), has: set(1, [0]))
        #expect(t.next(for: .peer("p"), now: .zero) == .fetch(0))
        #expect(t.next(for: .peer("p"), now: ms(2000)) == .idle)
    }

    @Test func aSourceThatWouldBeSlowerThanTheFirstCopyDoesNotDuplicate() throws {
        var s = ChunkScheduler(layout: layout(3))
        s.addSource(.origin, has: nil)
        s.addSource(.peer("p"), has: set(3, [0]))
        // p's chunk takes 10 s (1.6 KB/s) while the origin fetches the two others.
        #expect(s.next(for: .peer("p"), now: .zero) == .fetch(0))
        #expect(s.next(for: .origin, now: .zero) == .fetch(1))
        #expect(s.next(for: .origin, now: .zero) == .fetch(2))
        try s.report(.verified, chunk: 0, from: .peer("p"), now: .seconds(10))
        s.addSource(.peer("p"), has: set(3, [0, 1, 2]))
        s.progress(chunk: 1, from: .origin, bytes: chunk * 15 / 16)
        s.progress(chunk: 2, from: .origin, bytes: chunk * 15 / 16)
        // Chunks 1 and 2 need 0.8 s more each; p would need 10 s for a whole chunk.
        #expect(s.next(for: .peer("p"), now: .seconds(12)) == .idle)
    }

    @Test func duplicatesAreBounded() {
        var settings = ChunkScheduler.Settings()
        settings.maxDuplicates = 1
        var s = originFetching(2, of: 2, settings: settings)
        s.addSource(.peer("p"), has: set(2, [0, 1]))
        s.addSource(.peer("q"), has: set(2, [0, 1]))
        #expect(s.next(for: .peer("p"), now: ms(700)) == .duplicate(0))
        #expect(s.next(for: .peer("q"), now: ms(700)) == .idle)
        settings.maxDuplicates = 0
        var off = originFetching(1, of: 1, settings: settings)
        off.addSource(.peer("p"), has: set(1, [0]))
        #expect(off.next(for: .peer("p"), now: .seconds(5)) == .idle)
    }

    @Test func releasingAFirstCopyHandsTheChunkToItsDuplicate() {
        var s = twoInFlight()
        s.addSource(.peer("p"), has: set(2, [0, 1]))
        #expect(s.next(for: .peer("p"), now: ms(700)) == .duplicate(0))
        s.release(chunk: 0, from: .origin, now: ms(800))
        #expect(s.inFlight[0] == .peer("p"))
        s.release(chunk: 0, from: .peer("p"), now: ms(900))
        #expect(s.inFlight[0] == nil)
        #expect(s.next(for: .peer("p"), now: ms(900)) == .fetch(0))
    }
}

/// In a swarm the node keeps ⌈origin connections / members⌉ origin chunks in flight.
@Suite struct SwarmOriginCapTests {
    @Test func eachMemberTakesItsShareOfTheOriginConnections() throws {
        var settings = ChunkScheduler.Settings()
        settings.originConnections = 4
        var s = ChunkScheduler(layout: layout(16), settings: settings)
        s.addSource(.origin, has: nil)
        s.swarmSelf = "aaaa"
        for m in ["bbbb", "cccc", "dddd"] {
            s.updatePeer(.peer(m), has: set(16, []), claims: set(16, []), swarmID: m)
        }
        guard case .fetch(let first) = s.next(for: .origin, now: .zero) else { Issue.record("no chunk"); return }
        #expect(s.next(for: .origin, now: .zero) == .idle)  // 4 connections / 4 members = 1
        try s.report(.verified, chunk: first, from: .origin, now: .seconds(1))
        guard case .fetch = s.next(for: .origin, now: .seconds(1)) else { Issue.record("no next chunk"); return }
        // Two members left the swarm (done): 4 / 2 = 2 in flight.
        for m in ["cccc", "dddd"] { s.updatePeer(.peer(m), has: set(16, []), claims: set(16, []), swarmID: nil) }
        guard case .fetch = s.next(for: .origin, now: .seconds(1)) else { Issue.record("no second slot"); return }
        #expect(s.next(for: .origin, now: .seconds(1)) == .idle)
    }

    @Test func withoutASwarmTheOriginIsNotCapped() {
        var settings = ChunkScheduler.Settings()
        settings.originConnections = 1
        _ = originFetching(2, of: 3, settings: settings)  // with one origin connection, yet two chunks in flight
    }
}

@Suite struct SwarmEndGameTests {
    @Test func inASwarmTheOriginLeavesAPeersTransferToThatPeer() throws {
        var s = ChunkScheduler(layout: layout(2))
        s.addSource(.origin, has: nil)
        s.swarmSelf = "aaaa"
        s.updatePeer(.peer("b"), has: set(2, [0]), claims: set(2, []), swarmID: "bbbb")
        #expect(s.next(for: .peer("b"), now: .zero) == .fetch(0))
        #expect(s.next(for: .origin, now: .zero) == .fetch(1))
        _ = try s.report(.verified, chunk: 1, from: .origin, now: .zero)
        #expect(s.isFetching(chunk: 0, by: .peer("b")))
        // No byte from b for 2 s: outside a swarm the origin would fetch chunk 0 again; in one it waits for b.
        #expect(s.next(for: .origin, now: .seconds(2)) == .idle)
    }
}

@Suite struct EndGameStartTests {
    @Test func noDuplicateWhileAChunkStillWaitsForASource() throws {
        var s = ChunkScheduler(layout: layout(3))
        s.addSource(.origin, has: nil)
        s.addSource(.peer("p"), has: set(3, [0]))
        // Chunk 2 is claimed by another node: it waits for that node, not in flight here.
        s.updatePeer(.peer("q"), has: set(3, []), claims: set(3, [2]))
        #expect(s.next(for: .peer("p"), now: .zero) == .fetch(0))
        #expect(s.next(for: .origin, now: .zero) == .fetch(1))
        try s.report(.verified, chunk: 0, from: .peer("p"), now: .zero)
        s.addSource(.peer("p"), has: set(3, [0, 1]))
        // Chunk 1 is stalled at the origin, but chunk 2 is still neither done nor in flight: no end-game yet.
        #expect(s.next(for: .peer("p"), now: .seconds(2)) == .idle)
        // q's claim lapsed and the origin took chunk 2: now every chunk left is in flight.
        s.updatePeer(.peer("q"), has: set(3, []), claims: set(3, []))
        #expect(s.next(for: .origin, now: .seconds(2)) == .fetch(2))
        #expect(s.next(for: .peer("p"), now: .seconds(2)) == .duplicate(1))
    }
}
