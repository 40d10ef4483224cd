import ModelCacheCore
import ServiceLifecycle
import Synchronization

extension JobManager {
    /// One download shared by every job that wants the same file (single flight). It runs as a child task of
    /// `JobService`'s task group; jobs wait for it on a signal, and it is cancelled when the last of them gives up.
    final class Flight: Sendable {
        private struct State {
            var waiters = 1
            /// Set when the last waiter gave the download up: nobody may join it any more.
            var stopping = false
            var progress: FetchProgress?
        }

        private let state = Mutex(State())
        /// The download's result, once it ended.
        let outcome = Outcome<FetchResult>()
        /// Notified on every progress report and when the download ends.
        var changed: ChangeSignal { outcome.changes }
        /// Notified when the last waiting job gives the download up.
        private let stop = ChangeSignal()

        /// The latest progress report.
        var progress: FetchProgress? { state.withLock { $0.progress } }

        /// Called by the fetch for each report: stores the latest one and wakes the followers (never blocks).
        func report(_ p: FetchProgress) {
            state.withLock { $0.progress = p }
            changed.notify()
        }

        /// Another job waits for this download; false when it is being given up (the job starts a new one).
        func join() -> Bool {
            state.withLock { s in
                guard !s.stopping else { return false }
                s.waiters += 1
                return true
            }
        }

        /// A job stops waiting; true when it was the last one.
        func leave() -> Bool {
            state.withLock { s in
                s.waiters -= 1
                return s.waiters <= 0
            }
        }

        /// A cancelled job gives the download up: it is stopped only if no other job waits for it.
        func abandon() {
            let last = state.withLock { s in
                if s.waiters <= 1 { s.stopping = true }
                return s.stopping
            }
            if last { stop.notify() }
        }

        /// The download's result, once it has one.
        func value() async throws -> FetchResult { try await outcome.value() }

        /// Runs the download until it ends or is given up, then wakes every waiting job with the result.
        func run(_ body: @escaping @Sendable () async throws -> FetchResult) async {
            let outcome = await withTaskGroup(of: Result<FetchResult, any Error>?.self) { group in
                group.addTask {
                    do { return .success(try await body()) } catch { return .failure(error) }
                }
                group.addTask { await self.stop.wait(since: 0); return nil }
                var outcome: Result<FetchResult, any Error> = .failure(CancellationError())
                while let r = await group.next() {
                    if let r { outcome = r }
                    group.cancelAll()
                }
                return outcome
            }
            self.outcome.set(outcome)
        }
    }
}

/// Owns the node's jobs: runs them, and the downloads they share, as child tasks of one task group (no loose
/// tasks). On graceful shutdown they are cancelled, and each unfinished job is saved as pending, to resume at the
/// next start.
struct JobService: Service {
    let jobs: JobManager

    func run() async throws {
        await cancelWhenGracefulShutdown { await jobs.serve() }
    }
}
