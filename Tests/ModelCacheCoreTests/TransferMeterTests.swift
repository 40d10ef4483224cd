import Testing
@testable import ModelCacheCore

struct TransferMeterTests {
    @Test func aResumeDoesNotInflateTheRate() throws {
        var m = TransferMeter(window: 5)
        // 100 MiB were verified by an earlier run; this run moves 5 MiB per second.
        m.record(bytes: 100 << 20, total: 200 << 20, at: 0)
        for s in 1...4 { m.record(bytes: (100 << 20) + Int64(s) * (5 << 20), total: 200 << 20, at: Double(s)) }
        let rate = try #require(m.rate(now: 4))
        #expect(abs(rate - Double(5 << 20)) < 1)
        #expect(m.movedThisRun == 20 << 20)
        // 80 MiB left at 5 MiB/s.
        #expect(abs((m.eta(now: 4) ?? 0) - 16) < 0.01)
    }

    @Test func discardedBytesNeverMoveTheBarBackNorMakeTheRateNegative() {
        var m = TransferMeter(window: 5)
        m.record(bytes: 0, total: 1000, at: 0)
        m.record(bytes: 600, total: 1000, at: 1)
        m.record(bytes: 200, total: 1000, at: 2)  // a failed source's chunk was thrown away
        #expect(m.position == 600)
        #expect(m.fraction == 0.6)
        #expect((m.rate(now: 2) ?? -1) >= 0)
        m.record(bytes: 700, total: 1000, at: 3)
        #expect(m.position == 700)
    }

    @Test func theRateFollowsAMovingWindowAndAStallReadsZero() {
        var m = TransferMeter(window: 2)
        m.record(bytes: 0, total: nil, at: 0)
        for s in 1...10 { m.record(bytes: Int64(s) * 1000, total: nil, at: Double(s)) }  // 1000 B/s
        for s in 11...14 { m.record(bytes: 10_000 + Int64(s - 10) * 100, total: nil, at: Double(s)) }  // then 100 B/s
        #expect(abs((m.rate(now: 14) ?? 0) - 100) < 0.01)
        // Nothing for longer than the window: 0, not the last rate.
        #expect(m.rate(now: 20) == 0)
        #expect(m.eta(now: 20) == nil)  // no total
    }

    @Test func noRateBeforeHalfASecondAndNoETAWithoutARate() {
        var m = TransferMeter()
        m.record(bytes: 0, total: 10, at: 0)
        m.record(bytes: 5, total: 10, at: 0.1)
        #expect(m.rate(now: 0.1) == nil)
        #expect(m.eta(now: 0.1) == nil)
        #expect(m.rate(now: 1) != nil)
    }

    @Test func hostileCountsAreClamped() {
        var m = TransferMeter(window: -3)
        #expect(m.window == 5)
        m.record(bytes: -50, total: -1, at: 0)
        #expect(m.position == 0 && m.total == nil && m.fraction == nil)
        m.record(bytes: 5000, total: 100, at: 1)  // more than the total: the bar is full, not beyond
        #expect(m.fraction == 1)
        m.record(bytes: 6000, total: 100, at: .nan)
        #expect(m.position == 5000)
        m.record(bytes: 6000, total: 100, at: 0.5)  // a clock that went back
        #expect((m.rate(now: 2) ?? -1) >= 0)
        for i in 0..<2000 { m.record(bytes: 6000 + Int64(i), total: 100, at: 2 + Double(i) * 0.001) }
        #expect((m.rate(now: 4) ?? -1) >= 0)
    }

    @Test func theAverageCountsOnlyThisRun() {
        var m = TransferMeter()
        m.record(bytes: 1000, total: 2000, at: 10)
        m.record(bytes: 2000, total: 2000, at: 12)
        #expect(m.averageRate(now: 12) == 500)
    }
}

struct StallTests {
    @Test func aTransferWithoutBytesForThreeSecondsSaysSoAndKeepsItsPercent() {
        var m = TransferMeter()
        m.record(bytes: 0, total: 1000, at: 0)
        m.record(bytes: 400, total: 1000, at: 1)
        m.record(bytes: 400, total: 1000, at: 2)
        m.record(bytes: 300, total: 1000, at: 3)  // discarded bytes are no progress either
        #expect(m.stalled(now: 3.5) == nil)
        #expect(m.stalled(now: 5) == 4)
        let line = ProgressLine.fitted(name: "m.bin", phase: .transferring, meter: m, sources: [:], now: 5, width: 80)
        #expect(line == "m.bin  40%  no bytes for 4 s, retrying")
        #expect(ProgressLine.plain(name: "m.bin", phase: .transferring, meter: m, sources: [:], now: 5) == "m.bin: 40%, no bytes for 4 s, retrying")
        m.record(bytes: 500, total: 1000, at: 5.5)
        #expect(m.stalled(now: 6) == nil)
        m.record(bytes: 1000, total: 1000, at: 7)
        #expect(m.stalled(now: 20) == nil)  // complete: nothing to wait for
    }
}
