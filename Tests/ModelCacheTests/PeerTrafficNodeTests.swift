import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// `modelcache peers` counts what a node exchanged with each peer (issue 15): the node that served a blob shows the
/// bytes sent to the fetching peer's address; the fetching node shows them received from the serving peer's name.
@Suite struct PeerTrafficNodeTests {
    /// An origin serving `bytes` (Hub-style, with their digest) and a node `a` that fetched them from it.
    func nodeHolding(_ bytes: [UInt8]) async throws -> (origin: TestOrigin, url: String, a: TestNode) {
        let origin = try await TestOrigin.start()
        let url = origin.serveLinked("/m.bin", bytes)
        let a = try await TestNode.start()
        _ = try await a.fetch(url)
        return (origin, url, a)
    }

    @Test func bothEndsOfAPeerTransferCountItsBytes() async throws {
        let bytes = testBytes(3 * Int(TestEnvironment.chunk) + 1234)
        let (origin, url, a) = try await nodeHolding(bytes)
        let b = try await TestNode.start(peers: [a])
        await a.node.directory.addStatic(b.address)
        let before = await a.node.peerStatus()
        #expect(before.first { $0.name == b.name }?.sent == 0)

        let r = try await b.fetch(url)
        #expect(r.sources == ["peer \(a.name)": Int64(bytes.count)])
        let served = await a.node.peerStatus().first { $0.name == b.name }
        #expect(served?.sent == Int64(bytes.count), "\(String(describing: served))")
        #expect(served?.received == 0)
        let taken = await b.node.peerStatus().first { $0.name == a.name }
        #expect(taken?.received == Int64(bytes.count), "\(String(describing: taken))")
        #expect(taken?.sent == 0)
        await a.stop(); await b.stop(); await origin.stop()
    }

    /// A `--peer` given by host name: the bytes it took are counted for that entry (a request shows only its
    /// sender's address, 127.0.0.1 here), and the bytes taken from it too.
    @Test func aStaticPeerGivenByNameCountsTheBytesSentToIt() async throws {
        let bytes = testBytes(2 * Int(TestEnvironment.chunk) + 77)
        let (origin, url, a) = try await nodeHolding(bytes)
        let aByName = PeerAddress(host: "localhost", port: a.port)
        let b = try await TestNode.start(extraPeers: [aByName])
        let bByName = PeerAddress(host: "localhost", port: b.port)
        await a.node.directory.addStatic(bByName)

        let r = try await b.fetch(url)
        #expect(r.sources == ["peer \(aByName)": Int64(bytes.count)])
        let served = await a.node.peerStatus().first { $0.name == bByName.description }
        #expect(served?.sent == Int64(bytes.count), "\(String(describing: served))")
        let taken = await b.node.peerStatus().first { $0.name == aByName.description }
        #expect(taken?.received == Int64(bytes.count), "\(String(describing: taken))")
        #expect(taken?.sent == 0)
        await a.stop(); await b.stop(); await origin.stop()
    }
}
