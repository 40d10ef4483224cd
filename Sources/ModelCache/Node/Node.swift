import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import ModelCacheCore
import NIOCore
import ServiceLifecycle
import UnixSignals
import Synchronization

/// A running ModelCache node: the peer API on the LAN, the control API on a local socket, discovery, and the
/// fetch engine with the node's view of its peers.
public final class Node: Sendable {
    public let settings: NodeSettings
    public let store: Store
    public let engine: FetchEngine
    public let directory: PeerDirectory
    public let nodeID: String
    public let peerAPI: PeerAPI
    /// This node's counters and gauges (`/metrics`), in a registry of its own.
    public let metrics: CacheMetrics
    let logger: Logger
    let portStream: AsyncStream<Int>
    let portContinuation: AsyncStream<Int>.Continuation
    /// Yields true once the control socket listens with its mode set (false if it could not be set), then ends.
    let controlStream: AsyncStream<Bool>
    let controlContinuation: AsyncStream<Bool>.Continuation
    let boundPort = Mutex<Int?>(nil)
    let discovery = Mutex<AvahiDiscovery?>(nil)
    /// The TXT record last handed to discovery (`catalogueChanged`).
    let lastPublishedTXT = Mutex<PeerTXT?>(nil)
    private let jobsBox = Mutex<JobManager?>(nil)
    /// Bytes the peer listener sent with sendfile(2).
    let sendfileBytes = SendfileCounter()
    /// The token the browser API wants for actions (`<cache-dir>/web-token`, protocol §12).
    public let webToken: String
    /// Who may use the browser routes; set once the listener is bound (the port is part of the accepted hosts).
    let browserAccess = Mutex<BrowserAccess?>(nil)
    /// The node's background fetches.
    public var jobs: JobManager { jobsBox.withLock { $0! } }

    public init(settings: NodeSettings, store: Store, http: HTTPClient, engineSettings: FetchEngine.Settings = .init(),
                jobSettings: JobManager.Settings = .init(), logger: Logger) throws {
        self.settings = settings
        self.store = store
        self.logger = logger
        self.nodeID = try store.nodeID()
        self.webToken = try store.webToken()
        let active = ActiveDownloads()
        active.nodeID = nodeID
        var engineSettings = engineSettings
        engineSettings.clusterKey = settings.clusterKey
        let metrics = CacheMetrics(cacheLimit: engineSettings.maxCacheSize)
        self.metrics = metrics
        self.engine = FetchEngine(store: store, http: http, settings: engineSettings, active: active, observer: metrics, logger: logger)
        self.directory = PeerDirectory(client: PeerClient(http: http, clusterKey: settings.clusterKey, logger: logger),
                                       selfID: nodeID, logger: logger, onQuarantine: { metrics.quarantined() })
        self.peerAPI = PeerAPI(store: store, nodeID: nodeID, name: settings.name,
                               uploads: UploadLimiter(limit: settings.maxUploads), active: active,
                               uploadLimiter: settings.maxUploadRate.map(RateLimiter.init(bytesPerSecond:)),
                               served: { metrics.served($0, to: $1) }, clusterKey: settings.clusterKey, logger: logger)
        (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        (controlStream, controlContinuation) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let jobs = JobManager(node: self, settings: jobSettings, logger: logger)
        jobsBox.withLock { $0 = jobs }
        active.setMembershipHandler { [weak self] in self?.catalogueChanged() }
    }

    public var controlSocketPath: String { settings.controlSocket ?? store.root + "/node.sock" }

    /// The peer port once the listener is bound.
    public func listeningPort() async -> Int {
        if let p = boundPort.withLock({ $0 }) { return p }
        for await p in portStream { return p }
        return boundPort.withLock { $0 } ?? 0
    }

    /// True once the control socket listens (false: it never did, or its mode could not be set).
    func controlSocketListening() async -> Bool {
        for await ok in controlStream { return ok }
        return false
    }

    /// Runs until cancelled, or (with signals) until SIGTERM/SIGINT: then shuts down gracefully.
    public func run(gracefulShutdownSignals: [UnixSignal] = []) async throws {
        // However the node ends, whoever waits for the listeners (`listeningPort()`, `serve`'s banner) stops waiting.
        defer { portContinuation.finish(); controlContinuation.finish() }
        for p in settings.staticPeers { await directory.addStatic(p) }
        try await jobs.resumeUnfinished()
        let router = Router(context: NodeRequestContext.self)
        if let key = settings.clusterKey {  // first: a refused request reaches no route
            router.add(middleware: ClusterGuard<NodeRequestContext>(
                verifier: ClusterGuard<NodeRequestContext>.Verifier(ClusterRequestVerifier(key: key)), logger: logger))
        }
        let hub = settings.hfUpstream.map { HubService(node: self, upstream: $0, http: engine.http, logger: logger) }
        if let hub { router.add(middleware: HubMiddleware(hub: hub)) }
        if !settings.registryMirrors.mirrors.isEmpty {
            router.add(middleware: RegistryMiddleware(registry: RegistryService(node: self, mirrors: settings.registryMirrors, http: engine.http,
                                                                                    tagTTL: settings.registryTagTTL, logger: logger)))
        }
        peerAPI.addRoutes(to: router)
        metricsAPI.addRoutes(to: router)
        WebAPI(node: self, access: { [weak self] in self?.browserAccess.withLock { $0 } }).addRoutes(to: router)
        let limits = ConnectionLimits.current(settings)
        let sendfileBytes = self.sendfileBytes
        let peerApp = Application(
            router: router,
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionGateHandler(gate: limits.peerGate), SendfileInstaller(counter: sendfileBytes)],
                                                idleTimeout: limits.idleTimeout)),
            configuration: .init(address: .hostname(settings.listenHost, port: settings.listenPort), serverName: "modelcache",
                                 availableConnectionsDelegate: .maximum(2 * limits.maxConnections, logger: logger)),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? settings.listenPort
                boundPort.withLock { $0 = port }
                browserAccess.withLock { $0 = makeBrowserAccess(port: port) }
                portContinuation.yield(port)
                portContinuation.finish()
                logger.info("node listening", metadata: ["listen": "\(PeerAddress(host: settings.listenHost, port: port))", "node.id": "\(nodeID)"])
            },
            logger: logger)
        let control = ControlAPI(node: self)
        unlink(controlSocketPath)
        let controlRouter = Router()
        if let hub { controlRouter.add(middleware: HubMiddleware(hub: hub)) }  // `modelcache hf download` (protocol §15)
        control.addRoutes(to: controlRouter)
        let socketPath = controlSocketPath
        let socketMode = mode_t(settings.controlSocketMode)
        let controlReady = controlContinuation
        let log = logger
        let controlApp = Application(
            router: controlRouter,
            server: .http1(configuration: .init(idleTimeout: limits.idleTimeout)),
            configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "modelcache-control",
                                 availableConnectionsDelegate: .maximum(limits.maxControlConnections, logger: logger)),
            onServerRunning: { _ in
                let ok = chmod(socketPath, socketMode) == 0
                if !ok {
                    log.error("cannot set the control socket's mode", metadata: ["path": "\(socketPath)", "error": "\(String(cString: strerror(errno)))"])
                }
                controlReady.yield(ok)
                controlReady.finish()
            },
            logger: logger)
        var services: [any Service] = [peerApp, controlApp, PeerPoller(node: self)]
        if settings.mdns { services.append(DiscoveryService(node: self)) }
        if let path = settings.hfImport { services.append(HubCacheWatcher(node: self, path: path, hub: hub)) }
        services.append(EventStreamsCloser(hub: jobs.events))  // shut down before the listeners
        services.append(JobService(jobs: jobs))  // shut down early, so its jobs' last updates are still published
        // Under systemd (Type=notify): READY=1 once both listeners are up; shut down first, so STOPPING=1 goes at once.
        if let notify = SystemdNotifier.fromEnvironment(logger: logger) { services.append(SystemdNotifyService(node: self, socket: notify)) }
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: gracefulShutdownSignals,
            logger: logger))
        defer { unlink(socketPath) }
        do {
            try await group.run()
        } catch where ListenError.isAddressInUse(error) {
            let wildcard = NodeSettings.isWildcard(settings.listenHost)
            throw ModelCacheError.portInUse(wildcard ? "\(settings.listenPort)" : "\(settings.listenPort) on \(settings.listenHost)")
        }
    }

    /// The browser routes' rules: the allowed origins, the names this node answers to (loopback, its host name, its
    /// mDNS name, its listen address), each with the bound port, and its user (the owner of its token file).
    func makeBrowserAccess(port: Int) -> BrowserAccess {
        let host = ProcessInfo.processInfo.hostName
        let short = host.split(separator: ".").first.map(String.init) ?? host
        let names = [host, short, short + ".local", settings.name, settings.name + ".local", settings.listenHost]
        return BrowserAccess(allowedOrigins: settings.allowedOrigins, names: names, port: port, token: webToken,
                             nodeUser: UInt32(geteuid()))
    }

    /// A fetch on this node: the engine with the node's current view of its peers. Announces the new catalogue.
    public func fetch(_ request: FetchRequest, progress: (@Sendable (FetchProgress) -> Void)? = nil) async throws -> FetchResult {
        // Fresh catalogues before choosing sources (each costs a 304 when nothing changed).
        if try engine.cached(request) == nil { await directory.refreshAll() }
        let result = try await engine.fetch(request, peers: await directory.view(), progress: progress)
        if !result.cached { catalogueChanged() }
        return result
    }

    /// Re-publishes the TXT record with the new catalogue version, so peers re-read the catalogue at once.
    /// Publishes nothing when the record is the one last published (a `verify` that found nothing wrong).
    public func catalogueChanged() {
        guard let d = discovery.withLock({ $0 }), let txt = currentTXT() else { return }
        let changed = lastPublishedTXT.withLock { last in
            defer { last = txt }
            return last != txt
        }
        if changed { d.update(txt: txt) }
    }

    func currentTXT() -> PeerTXT? {
        let version = (try? peerAPI.currentCatalogue().version) ?? 0
        return PeerTXT(nodeID: nodeID, catalogueVersion: version, clusterFingerprint: settings.clusterKey?.fingerprint)
    }
}

/// Re-reads peers' catalogues periodically (a 304 when nothing changed). A timer, not a polling loop: static peers
/// announce nothing, so asking is the only way to hear of their changes (mDNS peers' TXT updates refresh at once).
/// Graceful shutdown cancels the wait, so the node stops without waiting out the interval.
struct PeerPoller: Service {
    let node: Node

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await node.directory.refreshAll()
                try? await Task.sleep(for: node.settings.pollInterval)
            }
        }
    }
}

/// Ends the job event streams when the node shuts down gracefully: an open stream (the status page's, or one whose
/// client vanished) would otherwise keep its listener waiting forever.
struct EventStreamsCloser: Service {
    let hub: EventHub<Job>

    func run() async throws {
        try? await gracefulShutdown()
        hub.close()
    }
}

/// Publishes this node and feeds what avahi finds into the peer directory.
struct DiscoveryService: Service {
    let node: Node

    func run() async throws {
        let port = await node.listeningPort()
        // 0: the listener never bound (its port is busy; the node is stopping with that error): publish nothing.
        guard port > 0, let txt = node.currentTXT() else { return }
        let discovery = AvahiDiscovery(instanceName: node.settings.name, port: port, txt: txt, logger: node.logger)
        node.discovery.withLock { $0 = discovery }
        node.lastPublishedTXT.withLock { if $0 == nil { $0 = txt } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await discovery.run() }
            group.addTask {
                for await event in discovery.events {
                    switch event {
                    case .found(let p):
                        // Another cluster's node (or a keyless one, for a keyed node; a keyed one, for a keyless
                        // node) is not a peer: no request is sent to it.
                        guard ClusterKey.sameCluster(ours: node.settings.clusterKey?.fingerprint, theirs: p.txt.clusterFingerprint) else {
                            node.logger.debug("ignoring a node of another cluster", metadata: [
                                "peer": "\(p.instance)", "peer.ck": "\(p.txt.clusterFingerprint ?? "none")"])
                            await node.directory.lost(p.instance)
                            continue
                        }
                        if await node.directory.found(p) {
                            await node.directory.refresh(p.instance)
                            node.jobs.networkChanged()
                        }
                    case .lost(let instance):
                        await node.directory.lost(instance)
                    case .available:
                        node.jobs.networkChanged()
                    case .unavailable:
                        break  // AvahiDiscovery logs this once; static peers keep working
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}
