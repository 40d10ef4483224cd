import Foundation
import Logging
import Testing
@testable import ModelCache
import ModelCacheCore

/// The node keeps its catalogue while the store's catalogue generation is unchanged: the generation must change with
/// every change a peer could see, from this process or another one, and only then.
@Suite struct CatalogueCacheTests {
    func write(_ env: TestEnvironment, _ name: String) throws -> String {
        let file = env.dir + "/" + name
        try PosixFile.writeAtomically(file, Array("the bytes of \(name)".utf8))
        return file
    }

    @Test func theGenerationChangesWithWhatPeersSeeAndNotWithUse() async throws {
        let env = try TestEnvironment()
        var g = try env.store.catalogueGeneration()
        func changed() throws -> Bool {
            let now = try env.store.catalogueGeneration()
            defer { g = now }
            return now != g
        }
        let r = try env.store.importFile(try write(env, "a.bin"), url: "http://o/a")
        #expect(try changed())
        try env.store.touch(r.sha256)  // used: the catalogue is the same
        _ = try env.store.setPinned(r.sha256.hex, true)
        #expect(try !changed())
        try env.store.addURL("http://o/a2", to: r.sha256, evidence: .originBytes, etag: "\"e\"")
        #expect(try changed())
        // Another process (another connection to the same index) commits a blob next to the node.
        let other = try Store(root: env.dir)
        let b = try other.importFile(try write(env, "b.bin"), url: "http://o/b")
        #expect(try changed())
        _ = try other.remove(b.sha256.hex)
        #expect(try changed())
        _ = try env.store.remove("http://o/a")
        #expect(try changed())
        await env.close()
    }

    @Test func theNodesCatalogueFollowsChangesMadeByAnotherProcess() async throws {
        let env = try TestEnvironment()
        let api = PeerAPI(store: env.store, nodeID: "0123456789abcdef", name: "test", uploads: UploadLimiter(limit: 1),
                          logger: Logger(label: "test"))
        let a = try env.store.importFile(try write(env, "a.bin"), url: "http://o/a")
        let first = try api.currentCatalogue()
        #expect(first.blobs.map(\.sha256) == [a.sha256])
        #expect(try api.currentCatalogue() == first)  // nothing changed: the same catalogue, the same version
        let other = try Store(root: env.dir)
        let b = try other.importFile(try write(env, "b.bin"), url: "http://o/b")
        let second = try api.currentCatalogue()
        #expect(second.blobs.map(\.sha256) == [a.sha256, b.sha256].sorted())
        #expect(second.version != first.version)
        try other.addURL("http://o/b2", to: b.sha256, evidence: .originDigest)
        #expect(try api.currentCatalogue().entry(b.sha256)?.urls == ["http://o/b", "http://o/b2"])
        _ = try other.remove(a.sha256.hex)
        #expect(try api.currentCatalogue().blobs.map(\.sha256) == [b.sha256])
        await env.close()
    }
}
