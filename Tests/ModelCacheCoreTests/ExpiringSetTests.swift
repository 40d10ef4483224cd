import ModelCacheCore
import Testing

@Suite struct ExpiringSetTests {
    let t0 = ContinuousClock.now

    @Test func aKeyIsKnownForItsLifetimeOnly() {
        var s = ExpiringSet<String>(lifetime: .seconds(60), capacity: 4)
        s.insert("acme/gated", now: t0)
        #expect(s.contains("acme/gated", now: t0 + .seconds(59)))
        #expect(!s.contains("acme/gated", now: t0 + .seconds(60)))
        #expect(!s.contains("acme/other", now: t0))
        s.remove("acme/gated")
        #expect(!s.contains("acme/gated", now: t0))
    }

    @Test func itNeverHoldsMoreThanItsCapacity() {
        var s = ExpiringSet<Int>(lifetime: .seconds(60), capacity: 3)
        for i in 0..<100 { s.insert(i, now: t0 + .seconds(i)) }
        #expect(s.count == 3)
        // The three newest stay; the older ones were pushed out, soonest-expiring first.
        #expect((97..<100).allSatisfy { s.contains($0, now: t0 + .seconds(100)) })
        #expect(!s.contains(96, now: t0 + .seconds(100)))
    }

    @Test func expiredKeysLeaveFirstWhenFull() {
        var s = ExpiringSet<String>(lifetime: .seconds(10), capacity: 2)
        s.insert("old", now: t0)
        s.insert("new", now: t0 + .seconds(8))
        s.insert("newest", now: t0 + .seconds(12))  // "old" expired at 10 s: it goes, "new" stays
        #expect(s.contains("new", now: t0 + .seconds(12)))
        #expect(s.contains("newest", now: t0 + .seconds(12)))
        #expect(s.count == 2)
    }

    @Test func insertingAgainRenewsWithoutGrowing() {
        var s = ExpiringSet<String>(lifetime: .seconds(10), capacity: 1)
        s.insert("a", now: t0)
        s.insert("a", now: t0 + .seconds(9))
        #expect(s.count == 1)
        #expect(s.contains("a", now: t0 + .seconds(15)))
    }
}
