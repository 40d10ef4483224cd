#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import ModelCacheCore
import ServiceLifecycle

/// Tells systemd (a `Type=notify` unit) when the node is ready and when it is stopping: one datagram to
/// `$NOTIFY_SOCKET` (sd_notify(3)). Hand-written over Glibc: no maintained Swift sd_notify package is vendored, and
/// libsystemd would become a runtime dependency for one `sendto`; the address parsing is `NotifySocket` (pure).
enum SystemdNotifier {
    /// The socket from the environment; nil when not run by systemd, or (logged) when the variable is unusable.
    static func fromEnvironment(logger: Logger) -> NotifySocket? {
        guard let value = getenv("NOTIFY_SOCKET").map({ String(cString: $0) }) else { return nil }
        do {
            return try NotifySocket.parse(value)
        } catch {
            logger.warning("not notifying systemd", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Sends one datagram; returns the error text, or nil once sent.
    @discardableResult
    static func send(_ fields: [(key: String, value: String)], to destination: NotifySocket) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "socket: " + String(cString: strerror(errno)) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = destination.pathBytes
        // NotifySocket.parse keeps the path within sun_path (108 bytes, with the NUL a file path needs).
        guard path.count <= MemoryLayout.size(ofValue: address.sun_path) else { return "address too long" }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.enumerated() { raw[i] = b }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? 2
        let length = socklen_t(pathOffset + path.count + (destination.isAbstract ? 0 : 1))
        let message = NotifySocket.message(fields)
        let sent = message.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) { a in
                a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), sa, length)
                }
            }
        }
        return sent == message.count ? nil : "sendto: " + String(cString: strerror(errno))
    }
}

/// Sends READY=1 once the peer port and the control socket listen, STOPPING=1 when graceful shutdown begins.
/// Runs for the node's whole life (a service that returned early would end the group).
struct SystemdNotifyService: Service {
    let node: Node
    let socket: NotifySocket

    func run() async throws {
        let listen = await node.listenAddress()
        let control = await node.controlSocketListening()
        if let listen, control {
            let status = "serving \(node.store.root) on \(listen); control socket \(node.controlSocketPath)"
            if let error = SystemdNotifier.send([("READY", "1"), ("STATUS", status)], to: socket) {
                node.logger.warning("could not tell systemd the node is ready", metadata: ["error": "\(error)"])
            } else {
                node.logger.info("told systemd the node is ready", metadata: ["listen": "\(listen)"])
            }
        }
        try? await gracefulShutdown()
        SystemdNotifier.send([("STOPPING", "1"), ("STATUS", "stopping")], to: socket)
    }
}
