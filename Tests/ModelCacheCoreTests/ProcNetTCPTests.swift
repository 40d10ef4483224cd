import Testing
@testable import ModelCacheCore

/// Finding a socket's owner in `/proc/net/tcp` and `/proc/net/tcp6` (lines as a little-endian Linux prints them):
/// the client's end of a connection, not the node's end nor the listener, in IPv4, IPv6 and v4-mapped form.
@Suite struct ProcNetTCPTests {
    static let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

    /// 127.0.0.1:36063 listens (uid 1000); a client at 127.0.0.1:55326 (uid 1001) is connected to it.
    static let tcp = header + """
           1: 0100007F:8CDF 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 644231 1 00000000a71dacc7 100 0 0 10 0
           2: 0100007F:8CDF 0100007F:D81E 01 00000000:00000000 00:00000000 00000000  1000        0 644233 1 00000000c8121659 20 0 0 10 -1
           3: 0100007F:D81E 0100007F:8CDF 01 00000000:00000000 00:00000000 00000000  1001        0 644232 2 00000000569844f7 20 0 0 10 -1
        """

    /// [::1]:52123 listens (uid 1000), a client at [::1]:37356 (uid 1001); and on a dual-stack listener at [::]:43843
    /// an IPv6 client at [::ffff:127.0.0.1]:40000 (uid 1002).
    static let tcp6 = """
          sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 00000000000000000000000001000000:CB9B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 644236 1 00000000e3e42772 100 0 0 10 0
           1: 00000000000000000000000001000000:CB9B 00000000000000000000000001000000:91EC 01 00000000:00000000 00:00000000 00000000  1000        0 644238 1 000000006cf03fee 20 0 0 10 -1
           2: 00000000000000000000000001000000:91EC 00000000000000000000000001000000:CB9B 01 00000000:00000000 00:00000000 00000000  1001        0 644237 2 00000000d758967f 20 0 0 10 -1
           3: 0000000000000000FFFF00000100007F:9C40 0000000000000000FFFF00000100007F:AB43 01 00000000:00000000 00:00000000 00000000  1002        0 644241 1 00000000d758967f 20 0 0 10 -1
        """

    func ep(_ ip: String, _ port: Int) -> ProcNetTCP.Endpoint { ProcNetTCP.Endpoint(ip: ip, port: port)! }

    @Test func findsTheClientsEndOverIPv4() {
        #expect(ProcNetTCP.owner(local: ep("127.0.0.1", 55326), remote: ep("127.0.0.1", 36063), in: Self.tcp) == 1001)
        // The node's end of the same connection is the node's.
        #expect(ProcNetTCP.owner(local: ep("127.0.0.1", 36063), remote: ep("127.0.0.1", 55326), in: Self.tcp) == 1000)
        // Another port, another address, or the wrong table: not found.
        #expect(ProcNetTCP.owner(local: ep("127.0.0.1", 55327), remote: ep("127.0.0.1", 36063), in: Self.tcp) == nil)
        #expect(ProcNetTCP.owner(local: ep("127.0.0.2", 55326), remote: ep("127.0.0.1", 36063), in: Self.tcp) == nil)
        #expect(ProcNetTCP.owner(local: ep("127.0.0.1", 55326), remote: ep("127.0.0.1", 36063), in: Self.tcp6) == nil)
    }

    @Test func findsTheClientsEndOverIPv6() {
        #expect(ProcNetTCP.owner(local: ep("::1", 37356), remote: ep("::1", 52123), in: Self.tcp6) == 1001)
        #expect(ProcNetTCP.owner(local: ep("::1", 52123), remote: ep("::1", 37356), in: Self.tcp6) == 1000)
        #expect(ProcNetTCP.owner(local: ep("::2", 37356), remote: ep("::1", 52123), in: Self.tcp6) == nil)
    }

    @Test func v4MappedAndIPv4FormsOfOneAddressMatch() {
        // A node on a dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1; its socket is in /proc/net/tcp.
        #expect(ProcNetTCP.owner(local: ep("::ffff:127.0.0.1", 55326), remote: ep("::ffff:127.0.0.1", 36063), in: Self.tcp) == 1001)
        // An IPv6 socket connected to a v4-mapped address is listed in tcp6 in mapped form; found from either form.
        #expect(ProcNetTCP.owner(local: ep("::ffff:127.0.0.1", 40000), remote: ep("::ffff:127.0.0.1", 43843), in: Self.tcp6) == 1002)
        #expect(ProcNetTCP.owner(local: ep("127.0.0.1", 40000), remote: ep("127.0.0.1", 43843), in: Self.tcp6) == 1002)
        #expect(ep("127.0.0.1", 1) == ep("::ffff:127.0.0.1", 1))
        #expect(ep("127.0.0.1", 1) != ep("::1", 1))
    }

    @Test func decodesTheKernelsHexEncoding() {
        // Each 32-bit word is printed in the (little-endian) host's order; the port is plain hex.
        #expect(ProcNetTCP.endpoint("0100007F:1F90") == ep("127.0.0.1", 8080))
        #expect(ProcNetTCP.endpoint("0500000A:0050") == ep("10.0.0.5", 80))
        #expect(ProcNetTCP.endpoint("00000000000000000000000001000000:0001") == ep("::1", 1))
        #expect(ProcNetTCP.endpoint("000080FE00000000FF005450123456FE:0016") == ep("fe80::5054:ff:fe56:3412", 22))
        #expect(ProcNetTCP.endpoint("0000000000000000FFFF00000100007F:0050") == ep("127.0.0.1", 80))
        for bad in ["0100007F", "0100007F:", "0100007:1F90", "0100007G:1F90", "0100007F:1F90:1", "0100007F:10000"] {
            #expect(ProcNetTCP.endpoint(Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test func aClosedSocketDoesNotPassForRoot() {
        // After its process closes it, a socket is listed with uid 0 and inode 0 until it is gone (FIN_WAIT2 or
        // TIME_WAIT): that is no owner at all.
        let closed = Self.header + """
               4: 0100007F:D81E 0100007F:8CDF 06 00000000:00000000 03:00001707 00000000     0        0 0 3 0000000000000000
            """
        #expect(ProcNetTCP.owner(local: ep("127.0.0.1", 55326), remote: ep("127.0.0.1", 36063), in: closed) == nil)
        // A live socket of the same pair listed after it is found.
        let reused = closed + "\n" + Self.tcp.split(separator: "\n").last!
        #expect(ProcNetTCP.owner(local: ep("127.0.0.1", 55326), remote: ep("127.0.0.1", 36063), in: reused) == 1001)
    }

    @Test func ignoresNoiseAndRejectsNonAddresses() {
        #expect(ProcNetTCP.owner(local: ep("127.0.0.1", 1), remote: ep("127.0.0.1", 2), in: "") == nil)
        #expect(ProcNetTCP.owner(local: ep("127.0.0.1", 55326), remote: ep("127.0.0.1", 36063), in: "garbage\n\n  1: x y") == nil)
        #expect(ProcNetTCP.Endpoint(ip: "localhost", port: 1) == nil)
        #expect(ProcNetTCP.Endpoint(ip: "127.0.0.1", port: 70_000) == nil)
    }
}
