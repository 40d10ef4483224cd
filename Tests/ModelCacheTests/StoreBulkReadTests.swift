import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// `list`, `verifyAll` and the catalogue read every blob with two statements (not one per blob): the records and
/// entries they give must be the ones the per-blob reads give, URL by URL.
@Suite struct StoreBulkReadTests {
    /// A store with `count` small blobs: blob i has a first-hand URL (import), every third also an origin URL with an
    /// ETag and date, every fifth a peer's and a user's URL (never advertised); one more blob is private.
    func filledStore(_ env: TestEnvironment, count: Int) throws -> (digests: [BlobDigest], privateDigest: BlobDigest) {
        var digests: [BlobDigest] = []
        for i in 0..<count {
            let file = env.dir + "/f\(i).bin"
            try PosixFile.writeAtomically(file, Array("blob \(i) ".utf8) + testBytes(64 + i))
            let r = try env.store.importFile(file, url: "http://o/\(i)/a")
            if i % 3 == 0 {
                try env.store.addURL("http://o/\(i)/c", to: r.sha256, evidence: .originBytes, etag: "\"e\(i)\"", lastModified: "d\(i)")
            }
            if i % 5 == 0 {
                try env.store.addURL("http://o/\(i)/b", to: r.sha256, evidence: .peers)
                try env.store.addURL("http://o/\(i)/d", to: r.sha256, evidence: .user)
            }
            digests.append(r.sha256)
        }
        let file = env.store.tmpDir + "/private.bin"
        try PosixFile.writeAtomically(file, Array("a gated file".utf8))
        let manifest = try FileHasher.manifest(of: file, chunkSize: ChunkLayout.defaultChunkSize)
        let p = try env.store.commit(file: file, manifest: manifest, url: "http://o/gated", evidence: .originBytes, isPrivate: true)
        return (digests, p.sha256)
    }

    @Test func listAndVerifyGiveThePerBlobRecords() async throws {
        let env = try TestEnvironment()
        let (digests, privateDigest) = try filledStore(env, count: 23)
        try env.store.touch(digests[7])  // the most recently used: listed first
        let listed = try env.store.list()
        #expect(listed.count == 24)
        #expect(listed.first?.sha256 == digests[7])
        for r in listed { #expect(try env.store.lookupEvenIfMissing(r.sha256) == r) }
        #expect(Set(listed.map(\.sha256)) == Set(digests + [privateDigest]))
        let withPeerURL = try #require(listed.first { $0.sha256 == digests[10] })
        #expect(withPeerURL.urls == ["http://o/10/a", "http://o/10/b", "http://o/10/d"])
        #expect(withPeerURL.urlEvidence["http://o/10/d"] == .user && withPeerURL.digestSource == .import)
        let reports = try env.store.verifyAll()
        #expect(reports.map(\.sha256) == (digests + [privateDigest]).sorted())
        let bad = reports.filter { !$0.ok }
        #expect(bad.isEmpty)
        await env.close()
    }

    @Test func catalogueListsFirstHandURLsOfPublicBlobsInDigestOrder() async throws {
        let env = try TestEnvironment()
        let (digests, privateDigest) = try filledStore(env, count: 23)
        let entries = try env.store.catalogueEntries()
        #expect(entries.map(\.sha256) == digests.sorted())
        #expect(!entries.contains { $0.sha256 == privateDigest })
        for (i, d) in digests.enumerated() {
            let e = try #require(entries.first { $0.sha256 == d })
            let record = try #require(try env.store.lookup(digest: d))
            #expect(e.size == record.size && e.chunkSize == record.chunkSize)
            // The import had no ETag: with an origin URL that has one, no ETag is claimed for both.
            #expect(e.urls == (i % 3 == 0 ? ["http://o/\(i)/a", "http://o/\(i)/c"] : ["http://o/\(i)/a"]))
            #expect(e.etag == nil && e.lastModified == nil)
        }
        // A blob whose only first-hand URL came with an ETag and date carries them.
        let file = env.dir + "/solo.bin"
        try PosixFile.writeAtomically(file, Array("solo".utf8))
        let solo = try env.store.importFile(file, url: nil)
        try env.store.addURL("http://o/solo", to: solo.sha256, evidence: .originDigest, etag: "\"s\"", lastModified: "ds")
        let e = try #require(try env.store.catalogueEntries().first { $0.sha256 == solo.sha256 })
        #expect(e.urls == ["http://o/solo"] && e.etag == "\"s\"" && e.lastModified == "ds")
        await env.close()
    }
}
