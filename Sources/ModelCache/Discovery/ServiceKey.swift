/// One DNS-SD service as avahi's browser reports it: the same instance may show up once per
/// interface and IP protocol.
struct ServiceKey: Hashable, Sendable, CustomStringConvertible {
    var interface: Int32
    var proto: Int32
    var name: String
    var type: String
    var domain: String

    var description: String { "\(name).\(type).\(domain) (if \(interface), proto \(proto))" }
}
