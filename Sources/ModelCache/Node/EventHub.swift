import Foundation
import Synchronization

/// Fans job updates out to every subscriber (server-sent event streams, waiting CLIs).
public final class EventHub<Event: Sendable>: Sendable {
    private let subscribers = Mutex<(open: [UUID: AsyncStream<Event>.Continuation], closed: Bool)>(([:], false))

    public init() {}

    /// Every event published from now on, until the subscriber stops iterating or the hub is closed.
    public func subscribe() -> AsyncStream<Event> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(256))
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.open.removeValue(forKey: id) } }
        let closed = subscribers.withLock { s in
            if !s.closed { s.open[id] = continuation }
            return s.closed
        }
        if closed { continuation.finish() }
        return stream
    }

    /// Ends every subscription, and any made later: the node is shutting down, so open event streams (a status
    /// page left open, a client gone without closing) end and their connections can close.
    public func close() {
        let open = subscribers.withLock { s in
            s.closed = true
            return Array(s.open.values)
        }
        for c in open { c.finish() }
    }

    public func publish(_ e: Event) {
        for c in subscribers.withLock({ Array($0.open.values) }) { c.yield(e) }
    }

    public var count: Int { subscribers.withLock { $0.open.count } }
}
