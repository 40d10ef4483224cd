import Foundation
import ModelCacheCore
import NIOCore

/// Which local user opened a TCP connection to this node over loopback: the uid of the client's socket in
/// `/proc/net/tcp` or `/proc/net/tcp6` (Linux; elsewhere, and when the socket is not listed, nil: unknown).
/// Read per request, only for loopback clients of the browser routes. protocol/PROTOCOL.md §12.
enum SocketOwner {
    /// - Parameters:
    ///   - client: the request's remote address (the client's end).
    ///   - node: the connection's local address (the node's end).
    static func uid(client: SocketAddress, node: SocketAddress) -> UInt32? {
        guard let clientIP = client.ipAddress, let clientPort = client.port, let nodeIP = node.ipAddress, let nodePort = node.port,
              let local = ProcNetTCP.Endpoint(ip: clientIP, port: clientPort),
              let remote = ProcNetTCP.Endpoint(ip: nodeIP, port: nodePort) else { return nil }
        // An IPv4 (or v4-mapped) connection may come from an IPv4 socket (tcp) or an IPv6 one (tcp6, mapped).
        for table in local.isIPv4 ? ["/proc/net/tcp", "/proc/net/tcp6"] : ["/proc/net/tcp6"] {
            guard let text = read(table) else { continue }
            if let uid = ProcNetTCP.owner(local: local, remote: remote, in: text) { return uid }
        }
        return nil
    }

    /// The whole file (`/proc` files report size 0, so read to the end), or nil if it cannot be read.
    static func read(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
