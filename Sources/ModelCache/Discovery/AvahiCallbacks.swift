import CAvahi

// C entry points handed to libavahi. Each one runs on the avahi poll thread with the
// threaded-poll lock held, recovers the Swift object from `userdata` (retained by its owner for
// as long as avahi may call back; see AvahiSession.start/teardown and ResolverContext), and
// forwards to a method that copies data out, updates state and yields events. None of them
// blocks on anything but libavahi's own D-Bus calls.

func avahiClientCallback(_ client: OpaquePointer?, _ state: AvahiClientState, _ userdata: UnsafeMutableRawPointer?) {
    guard let client, let userdata else { return }
    Unmanaged<AvahiSession>.fromOpaque(userdata).takeUnretainedValue().clientStateChanged(client, state)
}

func avahiEntryGroupCallback(_ group: OpaquePointer?, _ state: AvahiEntryGroupState, _ userdata: UnsafeMutableRawPointer?) {
    guard let group, let userdata else { return }
    Unmanaged<AvahiSession>.fromOpaque(userdata).takeUnretainedValue().entryGroupStateChanged(group, state)
}

func avahiServiceBrowserCallback(
    _ browser: OpaquePointer?, _ interface: AvahiIfIndex, _ proto: AvahiProtocol, _ event: AvahiBrowserEvent,
    _ name: UnsafePointer<CChar>?, _ type: UnsafePointer<CChar>?, _ domain: UnsafePointer<CChar>?,
    _ flags: AvahiLookupResultFlags, _ userdata: UnsafeMutableRawPointer?
) {
    guard let browser, let userdata else { return }
    let session = Unmanaged<AvahiSession>.fromOpaque(userdata).takeUnretainedValue()
    var key: ServiceKey?
    if let name, let type, let domain {
        key = ServiceKey(interface: interface, proto: proto, name: String(cString: name), type: String(cString: type), domain: String(cString: domain))
    }
    session.browserEvent(browser, event, key, flags: flags.rawValue)
}

func avahiServiceResolverCallback(
    _ resolver: OpaquePointer?, _ interface: AvahiIfIndex, _ proto: AvahiProtocol, _ event: AvahiResolverEvent,
    _ name: UnsafePointer<CChar>?, _ type: UnsafePointer<CChar>?, _ domain: UnsafePointer<CChar>?,
    _ hostName: UnsafePointer<CChar>?, _ address: UnsafePointer<AvahiAddress>?, _ port: UInt16,
    _ txt: UnsafeMutablePointer<AvahiStringList>?, _ flags: AvahiLookupResultFlags, _ userdata: UnsafeMutableRawPointer?
) {
    guard let userdata else { return }
    let context = Unmanaged<ResolverContext>.fromOpaque(userdata).takeUnretainedValue()
    switch event {
    case AVAHI_RESOLVER_FOUND:
        guard let address else { return }
        let host = AvahiInterop.numericHost(address, interface: interface)
        context.session.resolved(context, host: host, port: port, txt: AvahiInterop.strings(txt))
    default:
        context.session.resolveFailed(context)
    }
}

func avahiRetryTimerCallback(_ timeout: OpaquePointer?, _ userdata: UnsafeMutableRawPointer?) {
    guard let userdata else { return }
    Unmanaged<AvahiSession>.fromOpaque(userdata).takeUnretainedValue().retryTimerFired()
}

func avahiTXTTimerCallback(_ timeout: OpaquePointer?, _ userdata: UnsafeMutableRawPointer?) {
    guard let userdata else { return }
    Unmanaged<AvahiSession>.fromOpaque(userdata).takeUnretainedValue().applyTXTUpdate()
}
