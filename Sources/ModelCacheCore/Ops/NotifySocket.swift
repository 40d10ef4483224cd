/// Where systemd wants readiness messages (`$NOTIFY_SOCKET`, sd_notify(3)), parsed without I/O; the sender is
/// `SystemdNotifier` in ModelCache.
///
/// Written by hand: no maintained Swift sd_notify package is vendored (/opt/swift-packages has none), linking
/// libsystemd for one datagram would add a runtime dependency, and the protocol is one datagram of `KEY=value` lines
/// to an AF_UNIX socket.
public struct NotifySocket: Sendable, Equatable {
    /// Linux's `sizeof(sockaddr_un.sun_path)`.
    public static let maxPathBytes = 108

    /// The bytes of `sun_path`: a file path, or for an abstract socket (`@name`) a NUL then the name.
    public let pathBytes: [UInt8]
    public var isAbstract: Bool { pathBytes.first == 0 }

    /// Nil (with nothing to send) when the variable is unset or empty; an error for anything else it cannot use.
    public static func parse(_ value: String?) throws(ModelCacheError) -> NotifySocket? {
        guard let value, !value.isEmpty else { return nil }
        var bytes = Array(value.utf8)
        if bytes.first == UInt8(ascii: "@") {
            bytes[0] = 0
            guard bytes.count >= 2 else { throw .invalidArgument("NOTIFY_SOCKET '@' names no abstract socket: unset it or give @NAME or /PATH") }
        } else if bytes.first != UInt8(ascii: "/") {
            throw .invalidArgument("NOTIFY_SOCKET '\(value)' is neither an absolute path nor @abstract (vsock is not supported): unset it or give @NAME or /PATH")
        }
        // A path needs room for its terminating NUL; an abstract name uses the whole field.
        let limit = bytes[0] == 0 ? maxPathBytes : maxPathBytes - 1
        guard bytes.count <= limit else {
            throw .invalidArgument("NOTIFY_SOCKET is \(bytes.count) bytes, more than a socket address holds (\(limit)): use a shorter path")
        }
        guard !bytes.dropFirst().contains(0) else { throw .invalidArgument("NOTIFY_SOCKET holds a NUL byte: unset it or give @NAME or /PATH") }
        return NotifySocket(pathBytes: bytes)
    }

    /// The datagram: `KEY=value` lines. A newline in a value would start a new assignment, so it becomes a space.
    public static func message(_ fields: [(key: String, value: String)]) -> [UInt8] {
        Array(fields.map { $0.key + "=" + oneLine($0.value) }.joined(separator: "\n").utf8)
    }

    /// The value with every CR and LF (also a CRLF pair) replaced by a space.
    static func oneLine(_ value: String) -> String {
        String(String.UnicodeScalarView(value.unicodeScalars.map { s in s == "\n" || s == "\r" ? " " : s }))
    }
}
