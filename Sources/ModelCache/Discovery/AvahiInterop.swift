import CAvahi
import ModelCacheCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Small conversions between avahi's C types and Swift values.
enum AvahiInterop {
    /// Longest DNS-SD instance name: one DNS label.
    static let maxServiceNameBytes = 63
    /// More TXT strings than this are not copied; ``PeerTXT/parse(_:)`` rejects such records anyway.
    static let maxTXTStrings = 65

    static func errorString(_ code: Int32) -> String {
        String(cString: avahi_strerror(code))
    }

    /// The client's last error as text.
    static func clientError(_ client: OpaquePointer?) -> String {
        guard let client else { return "no client" }
        return errorString(avahi_client_errno(client))
    }

    /// Calls `body` with an avahi string list holding `strings`, in this order on the wire.
    /// (avahi keeps lists reversed internally and reverses them again when sending.)
    static func withStringList<R>(_ strings: [String], _ body: (UnsafeMutablePointer<AvahiStringList>?) -> R) -> R {
        var list: UnsafeMutablePointer<AvahiStringList>?
        for s in strings { list = avahi_string_list_add(list, s) }
        defer { avahi_string_list_free(list) }
        return body(list)
    }

    /// Copies a received TXT list out as raw bytes. Bounded: at most ``maxTXTStrings`` strings
    /// and 256 bytes of each (so an over-long string stays detectably over-long).
    static func strings(_ list: UnsafeMutablePointer<AvahiStringList>?) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var node = list
        while let n = node, out.count < maxTXTStrings {
            let size = min(avahi_string_list_get_size(n), PeerTXT.maxStringLength + 1)
            if let text = avahi_string_list_get_text(n), size > 0 {
                out.append(Array(UnsafeBufferPointer(start: text, count: size)))
            } else {
                out.append([])
            }
            node = avahi_string_list_get_next(n)
        }
        return out
    }

    /// A numeric address ("10.77.0.2", "fe80::1%eth0"), or nil if avahi cannot print it.
    static func numericHost(_ address: UnsafePointer<AvahiAddress>, interface: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(AVAHI_ADDRESS_STR_MAX))
        let printed = buffer.withUnsafeMutableBufferPointer { b -> String? in
            guard avahi_address_snprint(b.baseAddress, b.count, address) != nil else { return nil }
            return String(cString: b.baseAddress!)
        }
        guard var host = printed, !host.isEmpty else { return nil }
        if modelcache_avahi_address_is_ipv6_link_local(address) != 0, interface >= 0 {
            var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
            let scope = name.withUnsafeMutableBufferPointer { b -> String? in
                guard if_indextoname(UInt32(interface), b.baseAddress) != nil else { return nil }
                return String(cString: b.baseAddress!)
            }
            host += "%" + (scope ?? String(interface))
        }
        return host
    }

    /// `name` cut to one DNS label (63 bytes) on a character boundary; "modelcache" if empty.
    static func serviceName(_ name: String) -> String {
        var out = ""
        var bytes = 0
        for ch in name {
            let n = ch.utf8.count
            if bytes + n > maxServiceNameBytes { break }
            out.append(ch)
            bytes += n
        }
        return out.isEmpty ? "modelcache" : out
    }

    /// avahi's next name after a collision ("a" -> "a #2" -> "a #3").
    static func alternativeServiceName(_ name: String) -> String {
        guard let alt = avahi_alternative_service_name(name) else { return name + " #2" }
        defer { avahi_free(alt) }
        return String(cString: alt)
    }
}
