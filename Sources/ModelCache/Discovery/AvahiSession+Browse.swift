import CAvahi
import Logging
import ModelCacheCore

/// What a resolver's `userdata` points at. Retained while the resolver lives; released after
/// the resolver is freed (by us on REMOVE, or with its client).
final class ResolverContext {
    unowned let session: AvahiSession
    let key: ServiceKey

    init(session: AvahiSession, key: ServiceKey) {
        self.session = session
        self.key = key
    }
}

extension AvahiSession {
    func ensureBrowsing() {
        guard browser == nil, isRunning, let client else { return }
        browser = avahi_service_browser_new(
            client, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_UNSPEC), Self.serviceType, nil,
            AvahiLookupFlags(0), avahiServiceBrowserCallback, userdata)
        if browser == nil {
            logger.warning("mDNS: cannot browse", metadata: ["mdns.error": "\(AvahiInterop.clientError(client))"])
            scheduleRetry(afterMS: 2000)
        }
    }

    func browserEvent(_ b: OpaquePointer, _ event: AvahiBrowserEvent, _ key: ServiceKey?, flags: UInt32) {
        switch event {
        case AVAHI_BROWSER_NEW:
            guard let key, let client else { return }
            // Our own service is resolved too and then dropped by node id (see resolved()). The
            // OUR_OWN/LOCAL flags are not enough: they describe the record when it first appeared,
            // and after a name collision the same name belongs to the other node while avahi
            // reports no REMOVE/NEW in between, so skipping it here would hide that peer for good.
            guard resolvers[key] == nil else { return }
            guard resolvers.count < Self.maxTrackedServices else {
                if !warnedAboutServiceCap {
                    warnedAboutServiceCap = true
                    logger.warning("mDNS: too many services on the network; ignoring the rest", metadata: ["mdns.max": "\(Self.maxTrackedServices)"])
                }
                return
            }
            let context = Unmanaged.passRetained(ResolverContext(session: self, key: key))
            // Kept alive until REMOVE so that TXT and address changes are reported too.
            guard let r = avahi_service_resolver_new(
                client, key.interface, key.proto, key.name, key.type, key.domain,
                key.proto, AvahiLookupFlags(0), avahiServiceResolverCallback, context.toOpaque())
            else {
                context.release()
                logger.debug("mDNS: cannot resolve", metadata: ["peer.instance": "\(key.name)", "mdns.error": "\(AvahiInterop.clientError(client))"])
                return
            }
            resolvers[key] = Resolver(pointer: r, context: context)
            let ours = flags & (AVAHI_LOOKUP_RESULT_OUR_OWN.rawValue | AVAHI_LOOKUP_RESULT_LOCAL.rawValue) != 0
            logger.trace("mDNS: service appeared", metadata: ["peer.service": "\(key)", "mdns.local": "\(ours)"])
        case AVAHI_BROWSER_REMOVE:
            guard let key else { return }
            if let r = resolvers.removeValue(forKey: key) {
                avahi_service_resolver_free(r.pointer)
                r.context.release()
            }
            if let event = sightings.remove(key) { emit(event) }
            logger.trace("mDNS: service went away", metadata: ["peer.service": "\(key)"])
        case AVAHI_BROWSER_FAILURE:
            logger.warning("mDNS: browsing failed; retrying", metadata: ["mdns.error": "\(AvahiInterop.clientError(client))"])
            // Start over: a new browser reports every service again as NEW, and one that left
            // meanwhile would never get its REMOVE, so forget them all now.
            freeResolvers()
            emitLostForAll()
            // libavahi is inside this browser's dispatch: free it from the retry timer instead.
            if browser == b { browser = nil }
            failedBrowser = b
            scheduleRetry(afterMS: 2000)
        default:
            break  // CACHE_EXHAUSTED, ALL_FOR_NOW
        }
    }

    /// Frees every resolver (we stay connected) and releases their contexts.
    func freeResolvers() {
        for r in resolvers.values {
            avahi_service_resolver_free(r.pointer)
            r.context.release()
        }
        resolvers = [:]
    }

    func resolved(_ context: ResolverContext, host: String?, port: UInt16, txt: [[UInt8]]) {
        let key = context.key
        var peer: DiscoveredPeer?
        if let host, let parsed = PeerTXT.parse(txt) {
            if parsed.nodeID == publication?.txt.nodeID {
                // Our own service (or an older registration of this node): never a peer.
                logger.trace("mDNS: ignoring a service with our node id", metadata: ["peer.instance": "\(key.name)"])
            } else {
                peer = DiscoveredPeer(instance: key.name, host: host, port: Int(port), txt: parsed)
            }
        } else {
            logger.debug("mDNS: ignoring a service with an unusable TXT record or address", metadata: [
                "peer.instance": "\(key.name)",
                "peer.host": "\(host ?? "?")",
                "mdns.txt": "\(txt.map { String(decoding: $0.prefix(64), as: UTF8.self) })",
            ])
        }
        if let event = sightings.update(key, peer: peer) { emit(event) }
    }

    func resolveFailed(_ context: ResolverContext) {
        // Usually a timeout; the resolver stays alive and reports the service if it answers later.
        logger.debug("mDNS: resolving failed", metadata: ["peer.instance": "\(context.key.name)", "mdns.error": "\(AvahiInterop.clientError(client))"])
    }
}
