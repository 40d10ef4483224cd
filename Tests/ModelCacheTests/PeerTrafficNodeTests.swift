import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// `modelcache peers` counts what a node exchanged with each peer (issue 15): the node that served a blob shows the
/// bytes sent to the fetching peer's address; the fetching node shows them received from the serving peer's name.
@Suite struct PeerTrafficNodeTests {
    @Test func bothEndsOfAPeerTransferCountItsBytes() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(3 * Int(TestEnvironment.chunk) + 1234)
        let digest = BlobDigest.of(bytes)
        origin.serve("/m.bin", bytes, headers: [("X-Linked-Etag", "\"\(digest.hex)\"")])
        let a = try await TestNode.start()
        _ = try await a.fetch(origin.url("/m.bin"))
        let b = try await TestNode.start(peers: [a])
        await a.node.directory.addStatic(b.address)
        let before = await a.node.peerStatus()
        #expect(before.first { $0.name == b.name }?.sent == 0)

        let r = try await b.fetch(origin.url("/m.bin"))
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
        let origin = try await TestOrigin.start()
        let bytes = testBytes(2 * Int(TestEnvironment.chunk) + 77)
        let digest = BlobDigest.of(bytes)
        origin.serve("/n.bin", bytes, headers: [("X-Linked-Etag", "\"\(digest.hex)\"")])
        let a = try await TestNode.start()
        _ = try await a.fetch(origin.url("/n.bin"))
        let aByName = PeerAddress(host: "localhost", port: a.port)
        let b = try await TestNode.start(extraPeers: [aByName])
        let bByName = PeerAddress(host: "localhost", port: b.port)
        await a.node.directory.addStatic(bByName)

        let r = try await b.fetch(origin.url("/n.bin"))
        #expect(r.sources == ["peer \(aByName)": Int64(bytes.count)])
        let served = await a.node.peerStatus().first { $0.name == bByName.description }
        #expect(served?.sent == Int64(bytes.count), "\(String(describing: served))")
        let taken = await b.node.peerStatus().first { $0.name == aByName.description }
        #expect(taken?.received == Int64(bytes.count), "\(String(describing: taken))")
        #expect(taken?.sent == 0)
        await a.stop(); await b.stop(); await origin.stop()
    }
}
