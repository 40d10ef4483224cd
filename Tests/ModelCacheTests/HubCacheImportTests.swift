import Crypto
import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// `hf import`'s store side in-process: a Hub cache blob is hashed, checked against its name and hard-linked into the
/// store (one inode, read-only); wrong bytes are refused; a second import hashes nothing; and a write through the
/// Hub cache's name is caught like any change behind the store's back.
@Suite struct HubCacheImportTests {
    let repo = HubRepo(kind: .model, id: "acme/m")
    let commit = String(repeating: "c", count: 40)

    func fixture(_ bytes: [UInt8], name: String? = nil) throws -> (Store, String, HubImportPlan.Blob, String) {
        let dir = NSTemporaryDirectory() + "modelcache-hubimport-" + UUID().uuidString
        let store = try Store(root: dir + "/cache")
        let blobName = name ?? BlobDigest.of(bytes).hex
        let blobDir = dir + "/hub/models--acme--m/blobs"
        try PosixFile.makeDirectories(blobDir)
        let f = try PosixFile(path: blobDir + "/" + blobName, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try bytes.withUnsafeBytes { try f.write($0, at: 0) }
        // Downloaded long ago: a later write changes the mtime even within one clock tick.
        var times = [timespec(tv_sec: 1_600_000_000, tv_nsec: 0), timespec(tv_sec: 1_600_000_000, tv_nsec: 0)]
        utimensat(AT_FDCWD, blobDir + "/" + blobName, &times, 0)
        let isLFS = blobName.count == 64
        let meta = HubFileMeta(repo: repo, commit: commit, path: "m.bin", size: Int64(bytes.count), etag: blobName,
                               sha256: isLFS ? BlobDigest(ifValid: blobName) : nil, isPublic: true)
        let url = repo.resolveURL(upstream: "https://huggingface.co", revision: commit, path: "m.bin")
        let blob = HubImportPlan.Blob(name: blobName, size: Int64(bytes.count), files: [meta], urls: [url])
        return (store, blobDir + "/" + blobName, blob, dir)
    }

    func inode(_ p: String) -> UInt64 { var s = stat(); stat(p, &s); return UInt64(s.st_ino) }
    func mode(_ p: String) -> UInt32 { var s = stat(); stat(p, &s); return UInt32(s.st_mode) & 0o7777 }

    @Test func anLFSBlobIsLinkedOnceThenKnown() throws {
        let bytes = testBytes(300_000)
        let (store, file, blob, dir) = try fixture(bytes)
        defer { PosixFile.removeTree(dir) }
        let first = try store.importHub(HubImportRequest(blob: .init(file: file, blob: blob, isPrivate: false)))
        #expect(first.method == .linked && first.sha256 == BlobDigest.of(bytes))
        let stored = store.blobPath(BlobDigest.of(bytes))
        #expect(inode(stored) == inode(file) && mode(file) == 0o444)
        #expect(try store.lookup(url: blob.urls[0])?.sha256 == BlobDigest.of(bytes))
        #expect(try store.hubFile(repo, commit: commit, path: "m.bin")?.sha256 == BlobDigest.of(bytes))
        #expect(try store.importHub(HubImportRequest(blob: .init(file: file, blob: blob, isPrivate: false))).method == .known)
        // Deleting the Hub cache's name leaves the store's blob whole.
        unlink(file)
        #expect(try store.lookup(digest: BlobDigest.of(bytes)) != nil)
    }

    @Test func aWriteThroughTheHubCachesNameIsCaught() throws {
        let bytes = testBytes(200_000)
        let (store, file, blob, dir) = try fixture(bytes)
        defer { PosixFile.removeTree(dir) }
        _ = try store.importHub(HubImportRequest(blob: .init(file: file, blob: blob, isPrivate: false)))
        chmod(file, 0o644)  // what an editor that insists would do
        let f = try PosixFile(path: file, flags: O_WRONLY)
        try [UInt8(0x42)].withUnsafeBytes { try f.write($0, at: 1000) }
        #expect(try store.lookup(digest: BlobDigest.of(bytes)) == nil)  // re-hashed, wrong, evicted
    }

    @Test func wrongBytesAreRefusedAndNothingIsStored() throws {
        let bytes = testBytes(100_000)
        let (store, file, blob, dir) = try fixture(bytes, name: String(repeating: "e", count: 64))
        defer { PosixFile.removeTree(dir) }
        let out = try store.importHub(HubImportRequest(blob: .init(file: file, blob: blob, isPrivate: false)))
        #expect(out.method == .refused && out.problem?.contains("do not match its name") == true)
        #expect(try store.list().isEmpty && PosixFile.list(store.tmpDir).isEmpty)
        #expect(mode(file) & 0o200 != 0)  // the user's file is left as it was
    }

    @Test func aPlainFileIsCheckedByItsGitBlobIDAndKeptPrivateWhenAsked() throws {
        let bytes = Array("{\"model_type\": \"m\"}\n".utf8)
        let (store, file, blob, dir) = try fixture(bytes, name: HubTreeFile.gitBlobID(bytes))
        defer { PosixFile.removeTree(dir) }
        let out = try store.importHub(HubImportRequest(blob: .init(file: file, blob: blob, isPrivate: true)))
        #expect(out.method == .linked)
        let record = try #require(try store.lookup(digest: BlobDigest.of(bytes)))
        #expect(try record.isPrivate && store.catalogueEntries().isEmpty)
        #expect(try store.hubFile(repo, commit: commit, path: "m.bin")?.isPublic == false)
        #expect(try store.importHub(HubImportRequest(blob: .init(file: file, blob: blob, isPrivate: true))).method == .known)
        var wrong = blob
        wrong.name = String(repeating: "0", count: 40)
        wrong.files[0].etag = wrong.name
        wrong.files[0].commit = String(repeating: "d", count: 40)
        #expect(try store.importHub(HubImportRequest(blob: .init(file: file, blob: wrong, isPrivate: true))).method == .refused)
    }

    @Test func metadataNeverReplacesWhatTheNodeKnows() throws {
        let dir = NSTemporaryDirectory() + "modelcache-hubimport-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let store = try Store(root: dir)
        let newer = String(repeating: "f", count: 40)
        try store.saveHubRef(repo, revision: "main", commit: newer, info: nil, isPublic: true)
        let files = [HubTreeFile(path: "m.bin", size: 3, blobID: String(repeating: "1", count: 40), lfsSHA256: nil)]
        _ = try store.importHub(HubImportRequest(metadata: .init(repo: repo, refs: ["main": commit, commit: commit],
                                                                 trees: [commit: files], isPublic: true)))
        #expect(try store.hubRef(repo, revision: "main")?.commit == newer)
        #expect(try store.hubRef(repo, revision: commit)?.commit == commit)
        let (body, isPublic) = try #require(try store.hubTree(repo, revision: commit, query: "?" + hubSnapshotTreeQuery))
        #expect(isPublic && HubTreeFile.parse(apiListing: body) == files)
    }
}
