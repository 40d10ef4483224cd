import Foundation
import Synchronization
import ModelCacheCore

/// One download per file however many clients ask for it at once. A download belongs to the node, not to the
/// client that started it: it goes on when that client disconnects (the next request finds the blob, or joins).
actor HubFlights {
    /// A download in progress, and whether it has ended (readable without waiting).
    struct Flight: Sendable {
        let ended: Outcome<FetchResult>
        /// The download's result once it ended (its error if it failed).
        func value() async throws -> FetchResult { try await ended.value() }
    }

    private var running: [String: Flight] = [:]

    /// `spawn` runs the download as a child task of the node's task group (`JobManager.spawn`, owned by
    /// `JobService`). `onFailure` runs before the failure reaches anyone waiting for the flight.
    func flight(_ key: String, spawn: (@escaping @Sendable () async -> Void) -> Bool,
                onFailure: @escaping @Sendable (any Error) -> Void = { _ in },
                start: @escaping @Sendable () async throws -> FetchResult) -> Flight {
        if let f = running[key] { return f }
        let ended = Outcome<FetchResult>()
        let f = Flight(ended: ended)
        let spawned = spawn {
            do {
                let r = try await start()
                await self.finished(key)
                ended.set(.success(r))
            } catch {
                onFailure(error)
                await self.finished(key)
                ended.set(.failure(error))
            }
        }
        guard spawned else {
            ended.set(.failure(HubStream.Interrupted(detail: "the node is shutting down")))
            return f
        }
        running[key] = f
        return f
    }

    private func finished(_ key: String) { running[key] = nil }
}
