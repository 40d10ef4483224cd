import Foundation
import GRDB
import Testing
@testable import ModelCache
import ModelCacheCore

/// The index's `url.evidence` (migration "v5-url-evidence"): what a mapping may be used for.
@Suite struct URLEvidenceStoreTests {
    let bytes = testBytes(100_000)

    @Test func mappingsFromBeforeEvidenceAreKeptButNotAdvertised() throws {
        let dir = NSTemporaryDirectory() + "modelcache-test-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let source = dir + "-usb.bin"
        defer { unlink(source) }
        try PosixFile.writeAtomically(source, bytes)
        let digest = try Store(root: dir).importFile(source, url: nil).sha256  // a blob imported without a URL
        // A URL written the way the index did before evidence was recorded (no evidence column given: the
        // migration's default, which every row from before it got).
        do {
            let pool = try DatabasePool(path: dir + "/index.sqlite")
            try pool.write { db in
                try db.execute(sql: "INSERT INTO url (url, sha256, seenAt) VALUES ('http://o/old', ?, 0)", arguments: [digest.hex])
            }
        }
        let store = try Store(root: dir)
        #expect(try store.evidence(of: "http://o/old", digest: digest) == .unknown)
        #expect(try store.lookup(url: "http://o/old")?.sha256 == digest)  // still a hit here
        #expect(try store.catalogueEntries().map(\.urls) == [[]])  // not passed on
        #expect(try store.list().first?.digestSource == .unknown)
    }

    @Test func aUserNoteNeverReplacesAVouchedMappingAndOnlyFirstHandURLsAreListed() async throws {
        let env = try TestEnvironment()
        let file = env.dir + "/usb.bin"
        try PosixFile.writeAtomically(file, bytes)
        let r = try env.store.importFile(file, url: "http://o/a")
        try env.store.addURL("http://o/a", to: r.sha256, evidence: .user)
        #expect(try env.store.evidence(of: "http://o/a", digest: r.sha256) == .import)
        try env.store.addURL("http://o/b", to: r.sha256, evidence: .peers)
        try env.store.addURL("http://o/c", to: r.sha256, evidence: .originBytes, etag: "\"e\"")
        try env.store.addURL("http://o/d", to: r.sha256, evidence: .user)
        let entry = try #require(try env.store.catalogueEntries().first)
        #expect(entry.urls == ["http://o/a", "http://o/c"])
        #expect(entry.etag == nil)  // the import had none, /c had one: no ETag is claimed for both
        #expect(try env.store.lookup(url: "http://o/b") != nil && env.store.lookup(url: "http://o/d") == nil)
        let listed = try #require(try env.store.list().first)
        #expect(listed.digestSource == .originBytes)
        #expect(listed.urlEvidence == ["http://o/a": .import, "http://o/b": .peers, "http://o/c": .originBytes, "http://o/d": .user])
        await env.close()
    }
}
