import Synchronization

/// "Something changed": a generation counter that waiters can sleep on instead of polling.
///
/// A waiter reads `generation`, looks at the state it cares about, and, if there is nothing to do, calls
/// `wait(since:)` with the generation it read. `notify()` bumps the generation and resumes every waiter. A change
/// that lands between the read and the wait is never lost: `wait` returns at once when the generation has moved.
/// `wait` is cancellation-safe: a cancelled waiter is resumed (and forgotten) at once, and a waiter that is
/// cancelled before it suspends does not suspend at all.
///
/// Hand-written (about 60 lines) because no dependency offers it: `AsyncStream` has one consumer and buffers values,
/// swift-async-algorithms (not a dependency here) has no broadcast, and NIO's `EventLoopFuture`s fire once. This is
/// the condition-variable-with-a-counter of C, with continuations in place of threads.
public final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// How many times a waiter actually suspended (tests use it to prove that a reader sleeps on the signal).
        var suspensions = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Bumped by every `notify()`.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// Waiters suspended right now.
    public var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// How many times a waiter has suspended since the signal was made.
    public var suspensions: Int { state.withLock { $0.suspensions } }

    /// Bumps the generation and wakes every waiter. Never suspends; callable from any thread or synchronous code.
    public func notify() {
        let woken = state.withLock { s in
            s.generation &+= 1
            let w = Array(s.waiters.values)
            s.waiters.removeAll(keepingCapacity: true)
            return w
        }
        for c in woken { c.resume() }
    }

    /// Returns once the generation differs from `since` (at once if it already does), or once the task is cancelled.
    /// Returns the generation seen on return.
    @discardableResult
    public func wait(since: UInt64) async -> UInt64 {
        let id = state.withLock { s in
            s.nextID &+= 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                // Under the lock: either the cancellation handler has not run yet (then it will find and resume this
                // waiter), or it has, and then `Task.isCancelled` is already true (the flag is set before handlers run).
                let suspend = state.withLock { s in
                    guard s.generation == since, !Task.isCancelled else { return false }
                    s.waiters[id] = c
                    s.suspensions += 1
                    return true
                }
                if !suspend { c.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
        return generation
    }

    /// `wait(since:)`, but for at most `limit`: for a safety net where a change may come from something that does not
    /// notify (time passing), or for a long-poll with a deadline. Returns the generation seen on return.
    @discardableResult
    public func wait(since: UInt64, atMost limit: Duration) async -> UInt64 {
        guard generation == since else { return generation }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait(since: since) }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
        return generation
    }

    /// Returns once any of `signals` moved past its generation, the task is cancelled, or `limit` passed (nil: no limit).
    public static func waitAny(_ signals: [(signal: ChangeSignal, since: UInt64)], atMost limit: Duration? = nil) async {
        guard !signals.contains(where: { $0.signal.generation != $0.since }) else { return }
        await withTaskGroup(of: Void.self) { group in
            for (signal, since) in signals { group.addTask { await signal.wait(since: since) } }
            if let limit { group.addTask { try? await Task.sleep(for: limit) } }
            await group.next()
            group.cancelAll()
        }
    }
}
