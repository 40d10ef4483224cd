import Foundation
import Synchronization

/// Fans job updates out to every subscriber (server-sent event streams, waiting CLIs).
public final class EventHub<Event: Sendable>: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<Event>.Continuation]>([:])

    public init() {}

    public func subscribe() -> AsyncStream<Event> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(256))
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.removeValue(forKey: id) } }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    public func publish(_ e: Event) {
        for c in subscribers.withLock({ Array($0.values) }) { c.yield(e) }
    }

    public var count: Int { subscribers.withLock { $0.count } }
}
