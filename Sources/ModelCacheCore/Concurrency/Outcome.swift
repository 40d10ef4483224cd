import Synchronization

/// The result of work that runs elsewhere (a child task of a service's task group), set once and awaited by any
/// number of tasks: a promise built on `ChangeSignal`. Waiting is cancellation-safe and never polls.
public final class Outcome<Value: Sendable>: Sendable {
    private let result = Mutex<Result<Value, any Error>?>(nil)
    /// Notified when the outcome is set (and by `progress` users that share it, see `notify`).
    public let changes = ChangeSignal()

    public init() {}

    /// True once the work has ended.
    public var isSet: Bool { result.withLock { $0 != nil } }

    /// The result, if the work has ended.
    public var current: Result<Value, any Error>? { result.withLock { $0 } }

    /// Sets the result (the first one wins) and wakes every waiter.
    public func set(_ r: Result<Value, any Error>) {
        result.withLock { if $0 == nil { $0 = r } }
        changes.notify()
    }

    /// The value once the work has ended (or its error); throws `CancellationError` if the waiting task is cancelled.
    public func value() async throws -> Value {
        while true {
            let seen = changes.generation
            if let r = current { return try r.get() }
            try Task.checkCancellation()
            await changes.wait(since: seen)
        }
    }
}
