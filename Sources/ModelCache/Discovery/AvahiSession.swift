import CAvahi
import Logging
import ModelCacheCore

/// The avahi side of ``AvahiDiscovery``: one client (re-created when the daemon or D-Bus goes
/// away), the entry group that publishes our service, the browser, and one resolver per
/// service found.
///
/// Why `@unchecked Sendable` is sound: every mutable property is touched only
/// (a) in avahi callbacks, which libavahi runs on the poll thread with the threaded-poll lock held,
/// (b) by another thread between `avahi_threaded_poll_lock` and `avahi_threaded_poll_unlock`
///     (``AvahiDiscovery/update(txt:)``), or
/// (c) before `avahi_threaded_poll_start` / after `avahi_threaded_poll_stop`, when no poll thread
///     exists (``start()``, ``teardown()``, called by ``AvahiDiscovery/run()``).
/// So the poll lock serialises all access. The `let` properties are Sendable values or pointers
/// to avahi's poll vtable, which never changes.
final class AvahiSession: @unchecked Sendable {
    struct Publication {
        var name: String
        let port: UInt16
        var txt: PeerTXT
    }

    struct Resolver {
        let pointer: OpaquePointer
        let context: Unmanaged<ResolverContext>
    }

    enum Availability { case unknown, available, unavailable }

    static let serviceType = "_modelcache._tcp"
    /// Cap on services tracked at once, so a hostile LAN cannot make us open unbounded resolvers.
    static let maxTrackedServices = 256
    static let maxRetryDelayMS: UInt32 = 15_000

    let logger: Logger
    let continuation: AsyncStream<DiscoveryEvent>.Continuation
    let pollAPI: UnsafePointer<AvahiPoll>

    var publication: Publication?
    var client: OpaquePointer?
    var group: OpaquePointer?
    var browser: OpaquePointer?
    /// A browser that reported FAILURE, freed on the next retry tick.
    var failedBrowser: OpaquePointer?
    var resolvers: [ServiceKey: Resolver] = [:]
    var sightings = PeerSightings()
    var availability = Availability.unknown
    var needsNewClient = true
    var retryDelayMS: UInt32 = 0
    var warnedAboutServiceCap = false
    /// A TXT update that arrived while the service was still being probed; applied once it is established.
    var txtDeferred = false
    private var retryTimer: OpaquePointer?
    private var txtTimer: OpaquePointer?
    /// Our own reference, handed to avahi as `userdata`; released in ``teardown()``.
    private var retained: Unmanaged<AvahiSession>?

    init(pollAPI: UnsafePointer<AvahiPoll>, publication: Publication?, logger: Logger, continuation: AsyncStream<DiscoveryEvent>.Continuation) {
        self.pollAPI = pollAPI
        self.publication = publication
        self.logger = logger
        self.continuation = continuation
    }

    var userdata: UnsafeMutableRawPointer? { retained?.toOpaque() }

    var isRunning: Bool {
        guard let client else { return false }
        return avahi_client_get_state(client) == AVAHI_CLIENT_S_RUNNING
    }

    /// Before the poll thread starts: arm the timer that creates the first client on that thread.
    func start() {
        retained = Unmanaged.passRetained(self)
        retryTimer = modelcache_avahi_timeout_new(pollAPI, avahiRetryTimerCallback, userdata)
        txtTimer = modelcache_avahi_timeout_new(pollAPI, avahiTXTTimerCallback, userdata)
        scheduleRetry(afterMS: 0)
    }

    /// After the poll thread stopped: free every avahi object (the client owns the group,
    /// browser and resolvers) and drop the references avahi held.
    func teardown() {
        for t in [retryTimer, txtTimer] {
            if let t { modelcache_avahi_timeout_free(pollAPI, t) }
        }
        retryTimer = nil
        txtTimer = nil
        if let c = client { avahi_client_free(c) }
        client = nil
        forgetClientObjects()
        retained?.release()
        retained = nil
    }

    func scheduleRetry(afterMS ms: UInt32) {
        guard let t = retryTimer else { return }
        modelcache_avahi_timeout_arm(pollAPI, t, ms)
    }

    func armTXTTimer() {
        guard let t = txtTimer else { return }
        modelcache_avahi_timeout_arm(pollAPI, t, 0)
    }

    func retryTimerFired() {
        if needsNewClient {
            connect()
        } else if isRunning {
            if let b = failedBrowser { avahi_service_browser_free(b) }
            failedBrowser = nil
            ensurePublished()
            ensureBrowsing()
        }
    }

    /// Frees the old client (if any) and makes a new one. With `AVAHI_CLIENT_NO_FAIL` this only
    /// fails when D-Bus itself is unreachable; then we retry with backoff.
    private func connect() {
        if let old = client {
            avahi_client_free(old)
            client = nil
        }
        forgetClientObjects()
        needsNewClient = false
        var error: Int32 = 0
        // The callback may run inside avahi_client_new (CONNECTING or S_RUNNING) and sets `client`.
        let c = avahi_client_new(pollAPI, AVAHI_CLIENT_NO_FAIL, avahiClientCallback, userdata, &error)
        if let c {
            client = c
            return
        }
        // Whatever the callback created from inside avahi_client_new was freed with the client.
        client = nil
        forgetClientObjects()
        emitLostForAll()
        needsNewClient = true
        markUnavailable(reason: "cannot reach avahi-daemon over the D-Bus system bus: \(AvahiInterop.errorString(error))")
        retryDelayMS = retryDelayMS == 0 ? 1000 : min(retryDelayMS * 2, Self.maxRetryDelayMS)
        logger.debug("mDNS: will retry connecting to avahi", metadata: ["mdns.retry_ms": "\(retryDelayMS)"])
        scheduleRetry(afterMS: retryDelayMS)
    }

    func clientStateChanged(_ c: OpaquePointer, _ state: AvahiClientState) {
        client = c
        switch state {
        case AVAHI_CLIENT_S_RUNNING:
            retryDelayMS = 0
            markAvailable()
            ensurePublished()
            ensureBrowsing()
        case AVAHI_CLIENT_S_REGISTERING, AVAHI_CLIENT_S_COLLISION:
            // The daemon is (re)registering its host name: withdraw our service; it is added
            // again when the client is back in S_RUNNING.
            if let group { avahi_entry_group_reset(group) }
        case AVAHI_CLIENT_CONNECTING:
            markUnavailable(reason: "avahi-daemon is not running; waiting for it to start")
        case AVAHI_CLIENT_FAILURE:
            let error = avahi_client_errno(c)
            emitLostForAll()
            let disconnected = error == Int32(AVAHI_ERR_DISCONNECTED)
            markUnavailable(reason: disconnected
                ? "lost the connection to avahi-daemon (daemon or D-Bus restarted)"
                : "avahi client failed: \(AvahiInterop.errorString(error))")
            // Free the client and make a new one, but not from inside this callback: libavahi is
            // still dispatching this client's D-Bus message. The timer runs right after.
            needsNewClient = true
            if !disconnected { retryDelayMS = retryDelayMS == 0 ? 1000 : min(retryDelayMS * 2, Self.maxRetryDelayMS) }
            scheduleRetry(afterMS: disconnected ? 0 : retryDelayMS)
        default:
            break
        }
    }

    /// Forgets pointers to objects the client owned (already freed with it) and releases the
    /// Swift contexts avahi held for them.
    private func forgetClientObjects() {
        group = nil
        browser = nil
        failedBrowser = nil
        for r in resolvers.values { r.context.release() }
        resolvers = [:]
    }

    func emit(_ event: DiscoveryEvent) {
        continuation.yield(event)
    }

    func emitLostForAll() {
        for event in sightings.removeAll() { emit(event) }
    }

    func markUnavailable(reason: String) {
        guard availability != .unavailable else {
            logger.debug("mDNS still unavailable", metadata: ["mdns.reason": "\(reason)"])
            return
        }
        availability = .unavailable
        logger.warning("mDNS discovery unavailable; retrying in the background (static peers still work)",
                       metadata: ["mdns.reason": "\(reason)"])
        emit(.unavailable(reason: reason))
    }

    func markAvailable() {
        guard availability != .available else { return }
        let again = availability == .unavailable
        availability = .available
        logger.info(again ? "mDNS discovery available again" : "mDNS discovery running")
        emit(.available)
    }
}
