import Foundation
import NIOPosix

/// The numeric addresses a peer's host resolves to: what a request from that peer shows as its sender, so bytes
/// sent to `localhost` or `pc7.lan` can be counted for the `--peer` the user gave by that name.
enum HostAddresses {
    /// At most this many addresses of one name are kept (a name is data from the config or the LAN).
    static let limit = 16

    /// `host` itself when it is an IP address; else its addresses (getaddrinfo, on NIO's blocking-I/O pool so no
    /// Swift concurrency thread waits on DNS); empty when it does not resolve.
    static func resolve(_ host: String) async -> [String] {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if isNumeric(bare) { return [bare] }
        return (try? await NIOThreadPool.singleton.runIfActive { lookup(bare) }) ?? []
    }

    static func isNumeric(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Blocking: getaddrinfo(3), each address as getnameinfo(3) writes it numerically, without repeats.
    static func lookup(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let a = next, out.count < limit {
            var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(a.pointee.ai_addr, a.pointee.ai_addrlen, &name, socklen_t(name.count), nil, 0, NI_NUMERICHOST) == 0 {
                let s = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !out.contains(s) { out.append(s) }
            }
            next = a.pointee.ai_next
        }
        return out
    }
}
