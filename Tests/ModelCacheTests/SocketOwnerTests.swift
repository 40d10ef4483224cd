import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import ModelCache

/// Who opened a loopback connection, read from this machine's /proc/net/tcp{,6} over real sockets: IPv4, IPv6, and
/// an IPv4 client of a dual-stack listener (which the node sees as ::ffff:127.0.0.1).
@Suite struct SocketOwnerTests {
    /// Connects from `connect` to a listener on `listen`, then asks who owns the client's end with both ends
    /// written as the node sees them (`seenAs`); `clientPortOffset` asks about a port nobody holds.
    func owner(listen: String, connect: String, seenAs: String, clientPortOffset: Int = 0) async throws -> UInt32? {
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await ServerBootstrap(group: group).bind(host: listen, port: 0).get()
        let port = server.localAddress!.port!
        let client = try await ClientBootstrap(group: group).connect(host: connect, port: port).get()
        let clientPort = client.localAddress!.port! + clientPortOffset
        let uid = SocketOwner.uid(client: try SocketAddress(ipAddress: seenAs, port: clientPort),
                                  node: try SocketAddress(ipAddress: seenAs, port: port))
        try await client.close()
        try await server.close()
        return uid
    }

    @Test func findsThisProcesssUser() async throws {
        #if os(Linux)
        let me = UInt32(geteuid())
        #expect(try await owner(listen: "127.0.0.1", connect: "127.0.0.1", seenAs: "127.0.0.1") == me)
        #expect(try await owner(listen: "::1", connect: "::1", seenAs: "::1") == me)
        #expect(try await owner(listen: "::", connect: "127.0.0.1", seenAs: "::ffff:127.0.0.1") == me)
        #expect(try await owner(listen: "127.0.0.1", connect: "127.0.0.1", seenAs: "127.0.0.1", clientPortOffset: 1) == nil)
        #else
        print("skipped findsThisProcesssUser: /proc/net/tcp is Linux's")
        #endif
    }
}
