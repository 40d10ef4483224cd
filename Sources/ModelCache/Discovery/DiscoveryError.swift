/// Why ``AvahiDiscovery/run()`` could not start at all. Outages of avahi-daemon or D-Bus are not
/// errors: they are reported as ``DiscoveryEvent/unavailable(reason:)`` and retried.
public struct DiscoveryError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { "mDNS discovery: \(message)" }
}
