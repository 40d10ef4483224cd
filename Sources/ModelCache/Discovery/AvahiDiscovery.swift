import CAvahi
import Logging
import ModelCacheCore
import ServiceLifecycle
import Synchronization

/// Publishes this node as a `_modelcache._tcp` DNS-SD service through avahi-daemon and reports
/// the other nodes it sees on ``events``.
///
/// - Publishing: instance `instanceName` (renamed `"name #2"`, ... on a collision) on `port`,
///   with the ``PeerTXT`` record; ``update(txt:)`` changes the record in place.
/// - Browsing: one resolver per service found stays alive, so address and TXT changes arrive as
///   new ``DiscoveryEvent/found(_:)`` events. Our own service is never reported; services whose
///   TXT record is unusable are ignored.
/// - Outages: with no avahi-daemon or no D-Bus, one ``DiscoveryEvent/unavailable(reason:)`` is sent
///   and discovery keeps retrying; ``DiscoveryEvent/available`` follows when the daemon is back,
///   and the service is published again.
///
/// All avahi work happens on avahi's own poll thread (`avahi_threaded_poll`); ``run()`` only
/// starts it, waits for cancellation or graceful shutdown, and stops it.
public final class AvahiDiscovery: Service, Sendable {
    /// The DNS-SD service type published and browsed.
    public static let serviceType = AvahiSession.serviceType

    /// The avahi poll; its lock/unlock/stop functions are made to be called from any thread, and
    /// it is freed only in ``run()`` after `state` moved to `.finished`, under the Mutex.
    private struct Poll: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private enum RunState {
        case idle(AvahiSession.Publication?)
        case running(Poll, AvahiSession)
        case finished
    }

    private let logger: Logger
    private let stream: AsyncStream<DiscoveryEvent>
    private let continuation: AsyncStream<DiscoveryEvent>.Continuation
    /// Lock order: this Mutex, then the avahi poll lock. Avahi callbacks (which hold the poll
    /// lock) never take this Mutex.
    private let state: Mutex<RunState>

    /// Publishes `instanceName` on `port` (1...65535) with `txt`, and browses.
    /// The name is cut to 63 bytes (one DNS label); an empty name becomes "modelcache".
    public init(instanceName: String, port: Int, txt: PeerTXT, logger: Logger) {
        // A port outside 1...65535 (0: the listener never bound) cannot be published: browse only, and say so.
        let publication = UInt16(exactly: port).flatMap { p in
            p == 0 ? nil : AvahiSession.Publication(name: AvahiInterop.serviceName(instanceName), port: p, txt: txt)
        }
        if publication == nil {
            logger.error("mDNS: not publishing, the port is not in 1...65535", metadata: ["mdns.port": "\(port)"])
        }
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: DiscoveryEvent.self, bufferingPolicy: .unbounded)
        state = Mutex(.idle(publication))
    }

    /// Browses only; publishes nothing (``update(txt:)`` is then ignored).
    public init(browsingOnlyWith logger: Logger) {
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: DiscoveryEvent.self, bufferingPolicy: .unbounded)
        state = Mutex(.idle(nil))
    }

    /// Events in the order they happened. Meant for a single consumer; finishes when ``run()`` returns.
    public var events: AsyncStream<DiscoveryEvent> { stream }

    /// Re-publishes with a new TXT record. Callable from any thread; returns at once (the avahi
    /// thread applies it, and quick successive updates collapse into the last one). Before
    /// ``run()`` it sets the record to publish; after ``run()`` returned it does nothing.
    public func update(txt: PeerTXT) {
        state.withLock { state in
            switch state {
            case .idle(var publication?):
                publication.txt = txt
                state = .idle(publication)
            case .running(let poll, let session):
                avahi_threaded_poll_lock(poll.pointer)
                session.requestTXTUpdate(txt)
                avahi_threaded_poll_unlock(poll.pointer)
            case .idle(nil), .finished:
                break
            }
        }
    }

    /// Runs until the task is cancelled or a graceful shutdown is triggered, then withdraws our
    /// service, frees every avahi object and finishes ``events``.
    /// Throws ``DiscoveryError`` only if it cannot start at all (called twice, no memory for
    /// the poll thread); a missing daemon is not an error.
    public func run() async throws {
        let (poll, session): (Poll, AvahiSession)
        do {
            (poll, session) = try start()
        } catch {
            continuation.finish()
            throw error
        }
        // Returns on graceful shutdown, throws CancellationError on cancellation: both mean stop.
        try? await gracefulShutdown()
        stop(poll, session)
    }

    private func start() throws(DiscoveryError) -> (Poll, AvahiSession) {
        try state.withLock { state throws(DiscoveryError) -> (Poll, AvahiSession) in
            guard case .idle(let publication) = state else { throw DiscoveryError("run() may be called only once") }
            state = .finished
            guard let pointer = avahi_threaded_poll_new() else { throw DiscoveryError("cannot create the avahi poll") }
            let poll = Poll(pointer: pointer)
            let session = AvahiSession(pollAPI: avahi_threaded_poll_get(pointer), publication: publication,
                                       logger: logger, continuation: continuation)
            // No poll thread yet, so no lock needed; the first client is made on that thread.
            session.start()
            guard avahi_threaded_poll_start(pointer) >= 0 else {
                session.teardown()
                avahi_threaded_poll_free(pointer)
                throw DiscoveryError("cannot start the avahi poll thread")
            }
            state = .running(poll, session)
            return (poll, session)
        }
    }

    private func stop(_ poll: Poll, _ session: AvahiSession) {
        // After this no update() can reach avahi; one in progress has finished (it held the Mutex).
        state.withLock { $0 = .finished }
        // Joins the poll thread (must not hold the poll lock). From here on nothing runs concurrently.
        avahi_threaded_poll_stop(poll.pointer)
        session.teardown()
        avahi_threaded_poll_free(poll.pointer)
        continuation.finish()
        logger.debug("mDNS discovery stopped")
    }
}
