import Foundation
import Testing
@testable import ModelCache
@testable import ModelCacheCore

/// A peer that is a download's only source (the origin not asked, no swarm) is read as one GET across chunk ends
/// (`StreamPlan`): every chunk is still checked against the manifest the peers agreed on and journalled as its end
/// passes; a corrupt chunk blames the peer and ends the fetch with nothing stored; a cut stream resumes from the byte
/// where it stopped.
@Suite struct SolePeerStreamTests {
    let chunk = TestEnvironment.chunk
    let bytes = testBytes(12 * Int(TestEnvironment.chunk), seed: 77)
    var digest: BlobDigest { BlobDigest.of(bytes) }
    /// Never asked: every fetch here is `useOrigin: false`.
    let url = "http://127.0.0.1:1/solo.bin"

    func peer(fault: TestOrigin.Fault? = nil) async throws -> FakePeer {
        let entry = Catalogue.Entry(sha256: digest, size: Int64(bytes.count), chunkSize: chunk, urls: [url])
        let peer = try await FakePeer.start(claims: [entry], serving: bytes, as: digest)
        if let fault { peer.server.inject(fault, path: "/v1/blobs/\(digest.hex)") }
        return peer
    }

    func blobGETs(_ peer: FakePeer) -> Int {
        peer.server.getPaths.filter { $0 == "/v1/blobs/\(digest.hex)" }.count
    }

    @Test func theOnlyPeerIsReadInOneGETAndEveryByteComesFromIt() async throws {
        let p = try await peer()
        let c = try await TestNode.start(extraPeers: [p.address])
        let r = try await c.fetch(url, sha256: digest, useOrigin: false)
        #expect(c.env.contents(r.path) == bytes && r.sha256 == digest)
        #expect(r.sources == ["peer \(p.name)": Int64(bytes.count)])
        #expect(blobGETs(p) == 1, "GETs: \(p.server.getPaths)")
        await c.stop(); await p.server.stop()
    }

    @Test func aCorruptChunkBlamesThePeerEndsTheFetchAndKeepsOnlyTheChunksBeforeIt() async throws {
        let p = try await peer(fault: .flipByte(at: 5 * chunk + 3))
        let c = try await TestNode.start(extraPeers: [p.address])
        await #expect(throws: ModelCacheError.self) { try await c.fetch(url, sha256: digest, useOrigin: false) }
        #expect(try c.env.store.list().isEmpty)
        let status = await c.node.directory.status()
        #expect(status.first { $0.name == p.name }?.quarantined == true)
        // Chunks 0–4 were checked and journalled before chunk 5; nothing after the corrupt chunk was trusted.
        #expect(journalledChunks(in: c.env.dir) == 5)
        await c.stop(); await p.server.stop()
    }

    @Test func aCutStreamResumesFromTheByteWhereItStopped() async throws {
        // The fault counts the manifest's GET (under the same path) first, then cuts the blob's.
        let p = try await peer(fault: .dropAfter(bytes: 300_000, times: 2))
        let c = try await TestNode.start(extraPeers: [p.address])
        let r = try await c.fetch(url, sha256: digest, useOrigin: false)
        #expect(c.env.contents(r.path) == bytes && r.sha256 == digest)
        #expect(blobGETs(p) == 2, "GETs: \(p.server.getPaths)")
        #expect(p.server.getStarts.contains { $0 > 0 && $0 % chunk != 0 }, "GETs at \(p.server.getStarts)")
        let status = await c.node.directory.status()
        #expect(status.first { $0.name == p.name }?.quarantined == false)
        await c.stop(); await p.server.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func aPeerTooSlowForEachChunkIsGivenUpAfterItsTriesNotHeldOnTo() async throws {
        // 16 KB/s: a 64 KiB chunk would take 4 s; the limit is 0.5 s a chunk, and 2 tries.
        let p = try await peer(fault: .trickle(bytesPerSecond: 16_384))
        let c = try await TestNode.start(extraPeers: [p.address],
                                         env: TestEnvironment(maxAttempts: 2, peerChunkTimeout: .milliseconds(500)))
        do {
            _ = try await c.fetch(url, sha256: digest, useOrigin: false)
            Issue.record("a peer that never delivers a chunk in time gave the whole blob")
        } catch let error as ModelCacheError {
            guard case .peerRejected(_, let detail) = error else { Issue.record("\(error)"); return }
            #expect(detail.contains("no whole chunk within"), "\(detail)")
        }
        #expect(try c.env.store.list().isEmpty)
        // One GET per try, none resumed at once; slow is not malicious: not quarantined.
        #expect(blobGETs(p) == 2, "GETs: \(p.server.getPaths)")
        let status = await c.node.directory.status()
        #expect(status.first { $0.name == p.name }?.quarantined == false)
        await c.stop(); await p.server.stop()
    }
}
