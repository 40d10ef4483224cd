import Testing
import ModelCacheCore

/// The signal that replaces polling loops: wakes, never loses a wake-up, lets cancelled waiters go.
@Suite struct ChangeSignalTests {
    /// Waits (bounded, in the test only) until `n` waiters are parked on the signal.
    func parked(_ s: ChangeSignal, _ n: Int) async throws {
        for _ in 0..<2_000 where s.waiterCount < n { try await Task.sleep(for: .milliseconds(1)) }
        try #require(s.waiterCount == n)
    }

    @Test func notifyWakesAParkedWaiter() async throws {
        let s = ChangeSignal()
        let waiter = Task { await s.wait(since: 0) }
        try await parked(s, 1)
        #expect(s.suspensions == 1)
        s.notify()
        #expect(await waiter.value == 1)
        #expect(s.waiterCount == 0)
    }

    @Test func aChangeBetweenReadAndWaitIsNotLost() async {
        let s = ChangeSignal()
        let seen = s.generation
        s.notify()  // lands after the read, before the wait
        #expect(await s.wait(since: seen) == 1)
        #expect(s.suspensions == 0)  // returned at once, never slept
    }

    @Test func cancellingAParkedWaiterResumesIt() async throws {
        let s = ChangeSignal()
        let waiter = Task { await s.wait(since: 0) }
        try await parked(s, 1)
        waiter.cancel()
        #expect(await waiter.value == 0)  // returned without a notify
        #expect(s.waiterCount == 0)
    }

    @Test func aWaiterCancelledBeforeWaitingDoesNotSuspend() async {
        let s = ChangeSignal()
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await s.wait(since: 0)
        }
        #expect(await waiter.value == 0)
        #expect(s.suspensions == 0 && s.waiterCount == 0)
    }

    @Test func oneNotifyWakesManyWaiters() async throws {
        let s = ChangeSignal()
        let waiters = (0..<50).map { _ in Task { await s.wait(since: 0) } }
        try await parked(s, 50)
        s.notify()
        for w in waiters { #expect(await w.value == 1) }
        #expect(s.waiterCount == 0)
    }

    @Test func concurrentNotifiesNeverStrandAWaiter() async {
        // Each round: a waiter reads the generation, then waits, while another task notifies. A lost wake-up would
        // hang the round; the bounded wait turns such a hang into a failed expectation instead.
        let s = ChangeSignal()
        for _ in 0..<500 {
            let seen = s.generation
            async let notified: Void = s.notify()
            let after = await s.wait(since: seen, atMost: .seconds(10))
            await notified
            #expect(after != seen)
        }
    }

    @Test func boundedWaitReturnsWithoutANotify() async {
        let s = ChangeSignal()
        #expect(await s.wait(since: 0, atMost: .milliseconds(10)) == 0)
        #expect(s.waiterCount == 0)  // the timed-out waiter left
    }

    @Test func waitAnyReturnsWhenEitherSignalMoves() async throws {
        let a = ChangeSignal(), b = ChangeSignal()
        let waiter = Task { await ChangeSignal.waitAny([(a, 0), (b, 0)]) }
        try await parked(b, 1)
        b.notify()
        await waiter.value
        #expect(a.waiterCount == 0)  // the other wait was cancelled and left
    }
}

/// The set-once result that waiting tasks await on a signal.
@Suite struct OutcomeTests {
    @Test func waitersGetTheValueOnceSetAndTheFirstSetWins() async throws {
        let o = Outcome<Int>()
        let waiters = (0..<10).map { _ in Task { try await o.value() } }
        for _ in 0..<2_000 where o.changes.waiterCount < 10 { try await Task.sleep(for: .milliseconds(1)) }
        o.set(.success(7))
        o.set(.success(8))
        for w in waiters { #expect(try await w.value == 7) }
        #expect(try await o.value() == 7)
    }

    @Test func aCancelledWaiterThrowsAndTheOutcomeStaysOpen() async throws {
        let o = Outcome<Int>()
        let waiter = Task { try await o.value() }
        for _ in 0..<2_000 where o.changes.waiterCount < 1 { try await Task.sleep(for: .milliseconds(1)) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(!o.isSet)
    }

    @Test func anErrorReachesEveryWaiter() async {
        struct Boom: Error {}
        let o = Outcome<Int>()
        o.set(.failure(Boom()))
        await #expect(throws: Boom.self) { try await o.value() }
    }
}
