import Foundation
import Synchronization
import ModelCacheCore

/// One download per file however many clients ask for it at once. A download belongs to the node, not to the
/// client that started it: it goes on when that client disconnects (the next request finds the blob, or joins).
actor HubFlights {
    /// A download in progress, and whether it has ended (readable without waiting).
    struct Flight: Sendable {
        let task: Task<FetchResult, any Error>
        let ended: EndedFlag
    }

    final class EndedFlag: Sendable {
        private let flag = Mutex(false)
        var isSet: Bool { flag.withLock { $0 } }
        /// Notified when the flag is set.
        let changes = ChangeSignal()
        func set() {
            flag.withLock { $0 = true }
            changes.notify()
        }
    }

    private var running: [String: Flight] = [:]

    /// `onFailure` runs before the failure reaches anyone waiting for the flight.
    func flight(_ key: String, onFailure: @escaping @Sendable (any Error) -> Void = { _ in },
                start: @escaping @Sendable () async throws -> FetchResult) -> Flight {
        if let f = running[key] { return f }
        let ended = EndedFlag()
        let t = Task<FetchResult, any Error> {
            defer { ended.set() }
            do {
                let r = try await start()
                self.finished(key)
                return r
            } catch {
                onFailure(error)
                self.finished(key)
                throw error
            }
        }
        let f = Flight(task: t, ended: ended)
        running[key] = f
        return f
    }

    private func finished(_ key: String) { running[key] = nil }
}
