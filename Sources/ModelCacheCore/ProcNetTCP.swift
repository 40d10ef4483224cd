import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which local user owns a TCP socket, read from the text of Linux's `/proc/net/tcp` (IPv4) and `/proc/net/tcp6`
/// (IPv6): pure parsing, the node reads the files. The browser routes use it to answer only the node's own user
/// (protocol/PROTOCOL.md §12).
///
/// A line is `sl local rem st tx:rx tr:when retrnsmt uid timeout inode …`; an address is the kernel's bytes printed
/// as 32-bit words in the host's byte order (`%08X`: 127.0.0.1 is `0100007F` on a little-endian machine, `::1` is
/// `00000000000000000000000001000000`), a port is 4 hex digits.
public enum ProcNetTCP {
    /// One end of a connection: 16 address bytes (IPv4 as `::ffff:a.b.c.d`, so the IPv4 and IPv6 views of one
    /// socket compare equal) and a port.
    public struct Endpoint: Sendable, Hashable {
        public var address: [UInt8]
        public var port: UInt16

        /// From an address as text (`127.0.0.1`, `::1`, `::ffff:127.0.0.1`); nil if it is not one.
        public init?(ip: String, port: Int) {
            guard let p = UInt16(exactly: port) else { return nil }
            var v4 = in_addr(), v6 = in6_addr()
            if inet_pton(AF_INET, ip, &v4) == 1 {
                self.init(address: ProcNetTCP.mapped(withUnsafeBytes(of: &v4) { Array($0) }), port: p)
            } else if inet_pton(AF_INET6, ip, &v6) == 1 {
                self.init(address: withUnsafeBytes(of: &v6) { Array($0) }, port: p)
            } else {
                return nil
            }
        }

        /// An IPv4 address (as `::ffff:a.b.c.d`).
        public var isIPv4: Bool { address.starts(with: ProcNetTCP.mapped([])) }

        init(address: [UInt8], port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    /// The uid that owns the socket whose local end is `local` and whose remote end is `remote`, or nil when the
    /// table has no such socket held open by a process. (A socket its process closed is listed with uid 0 and
    /// inode 0 until it is gone: it is not counted, since it would pass for root's.)
    ///
    /// For the client of a connection to this node, `local` is the client's address (the request's remote
    /// address) and `remote` the node's.
    public static func owner(local: Endpoint, remote: Endpoint, in table: String) -> UInt32? {
        for line in table.split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 10, omittingEmptySubsequences: true)
            guard f.count >= 10, f[0] != "sl",
                  let l = endpoint(f[1]), l == local,
                  let r = endpoint(f[2]), r == remote,
                  let inode = UInt64(f[9]), inode != 0,
                  let uid = UInt32(f[7]) else { continue }
            return uid
        }
        return nil
    }

    /// `0100007F:1F90` or a 32-digit IPv6 address with its port; nil if malformed.
    static func endpoint(_ field: Substring) -> Endpoint? {
        let parts = field.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1], radix: 16) else { return nil }
        let hex = Array(parts[0].utf8)
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        for start in stride(from: 0, to: hex.count, by: 8) {
            guard let word = UInt32(String(decoding: hex[start..<start + 8], as: UTF8.self), radix: 16) else { return nil }
            // The kernel printed the address's bytes read as a host-order word: the word's bytes in memory are them.
            bytes += withUnsafeBytes(of: word) { Array($0) }
        }
        return Endpoint(address: hex.count == 8 ? mapped(bytes) : bytes, port: port)
    }

    static func mapped(_ v4: [UInt8]) -> [UInt8] {
        Array(repeating: 0, count: 10) + [0xFF, 0xFF] + v4
    }
}
