import Foundation
import AsyncHTTPClient
import GRDB
import Synchronization
import Testing
@testable import ModelCache
import ModelCacheCore

/// The store in-process: it only takes folders that are its own, deletes only its own files, and never serves a
/// blob whose file was changed behind its back.
@Suite struct StoreSafetyTests {
    func tempDir() -> String { NSTemporaryDirectory() + "modelcache-safety-" + UUID().uuidString }

    func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let f = try PosixFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try bytes.withUnsafeBytes { try f.write($0, at: 0) }
    }

    /// A store with one imported blob.
    func storeWithBlob(_ bytes: [UInt8] = testBytes(200_000)) throws -> (Store, BlobRecord, String) {
        let dir = tempDir()
        let store = try Store(root: dir)
        try writeFile(dir + "-src", bytes)
        defer { unlink(dir + "-src") }
        return (store, try store.importFile(dir + "-src", url: "http://h/m.bin"), dir)
    }

    @Test func aNewCacheIsTaggedWithTheCacheDirSignature() throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        _ = try Store(root: dir)
        let tag = String(decoding: PosixFile.readAll(dir + "/CACHEDIR.TAG") ?? [], as: UTF8.self)
        #expect(tag.hasPrefix("Signature: 8a477f597d28d172789f06886806bc55\n"))
        #expect(tag.contains("modelcache"))
    }

    /// Stop 24's CI failure: ten `fetch` processes on a new cache; two applied the same migration ("duplicate column
    /// name: evidence") because each had renamed a tag of its own over CACHEDIR.TAG and locked a different file.
    @Test func storesOpenedAtOnceOnANewFolderAllOpenAndMigrateOnce() throws {
        for _ in 0..<25 {
            let dir = tempDir()
            defer { PosixFile.removeTree(dir) }
            let errors = Mutex<[String]>([])
            let start = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
            let openers = 8
            for _ in 0..<openers {
                Thread {
                    start.wait()
                    do { _ = try Store(root: dir) } catch { errors.withLock { $0.append("\(error)") } }
                    done.signal()
                }.start()
            }
            for _ in 0..<openers { start.signal() }
            for _ in 0..<openers { done.wait() }
            #expect(errors.withLock { $0 } == [])
            let store = try Store(root: dir)
            #expect(try store.db.read { try Store.migrator.hasCompletedMigrations($0) })
        }
    }

    @Test func anUntaggedNonEmptyFolderIsRefusedAndLeftUntouched() throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        try PosixFile.makeDirectories(dir + "/tmp")
        try writeFile(dir + "/tmp/someone-elses", [1, 2, 3])
        try writeFile(dir + "/notes.txt", [4])
        #expect(throws: CacheFolderError.self) { try Store(root: dir) }
        #expect(PosixFile.list(dir) == ["notes.txt", "tmp"])
        #expect(PosixFile.list(dir + "/tmp") == ["someone-elses"])
    }

    @Test func anEmptyPathIsRefused() {
        #expect(throws: CacheFolderError.self) { try Store(root: "") }
        #expect(Store.defaultRoot(environment: ["MODELCACHE_DIR": "", "HOME": "/home/x"]) == "")
    }

    @Test func aCacheFromBeforeTheTagIsAdoptedWithItsBlobs() throws {
        let (store, record, dir) = try storeWithBlob()
        defer { PosixFile.removeTree(dir) }
        unlink(dir + "/CACHEDIR.TAG")
        let reopened = try Store(root: dir)
        #expect(PosixFile.exists(dir + "/CACHEDIR.TAG"))
        #expect(try reopened.lookup(digest: record.sha256) != nil)
        _ = store
    }

    @Test func openingTheStoreDeletesNothingAndCleanupRemovesOnlyItsOwnTemporaries() throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let store = try Store(root: dir)
        try writeFile(dir + "/tmp/import-stale", [1])
        try writeFile(dir + "/tmp/not-mine", [2])
        _ = try Store(root: dir)  // a reader (say `list`) opening the cache
        #expect(PosixFile.list(dir + "/tmp") == ["import-stale", "not-mine"])
        store.removeOwnTemporaries()  // what a lock holder does
        #expect(PosixFile.list(dir + "/tmp") == ["not-mine"])
    }

    @Test func committedBlobsAreReadOnlyWithTheirStatRecorded() throws {
        let (store, record, dir) = try storeWithBlob()
        defer { PosixFile.removeTree(dir) }
        var st = stat()
        try #require(stat(record.path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o444)
        #expect(try store.recordedStat(record.sha256) == Store.currentStat(record.path))
    }

    @Test func aBlobWrittenBehindTheStoresBackIsEvictedNotServed() throws {
        let (store, record, dir) = try storeWithBlob()
        defer { PosixFile.removeTree(dir) }
        chmod(record.path, 0o644)
        let f = try PosixFile(path: record.path, flags: O_WRONLY)
        try [UInt8](repeating: 0x41, count: 10).withUnsafeBytes { try f.write($0, at: 5) }  // same size, other bytes
        #expect(try store.lookup(digest: record.sha256) == nil)
        #expect(!PosixFile.exists(record.path))
        #expect(try store.list().isEmpty)
        #expect(try store.lookup(url: "http://h/m.bin") == nil)
    }

    @Test func aBlobReplacedByAnotherFileWithOtherBytesIsEvicted() throws {
        let (store, record, dir) = try storeWithBlob()
        defer { PosixFile.removeTree(dir) }
        unlink(record.path)
        try writeFile(record.path, testBytes(200_000, seed: 7))  // a new inode, same size
        #expect(try store.lookup(digest: record.sha256) == nil)
        #expect(!PosixFile.exists(record.path))
    }

    @Test func aTouchedBlobWithRightBytesIsRehashedServedAndItsNewStatRecorded() throws {
        let (store, record, dir) = try storeWithBlob()
        defer { PosixFile.removeTree(dir) }
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        try #require(utimensat(AT_FDCWD, record.path, &times, 0) == 0)
        let touched = Store.currentStat(record.path)
        #expect(try store.recordedStat(record.sha256) != touched)
        #expect(try store.lookup(digest: record.sha256) != nil)
        #expect(try store.recordedStat(record.sha256) == touched)
    }

    @Test func aBlobFromBeforeTheStatMigrationIsRehashedOnceThenTrusted() throws {
        let (store, record, dir) = try storeWithBlob()
        defer { PosixFile.removeTree(dir) }
        try store.db.write { db in try db.execute(sql: "UPDATE blob SET statSize = NULL, statMtimeNanos = NULL, statInode = NULL") }
        #expect(try store.recordedStat(record.sha256) == nil)
        #expect(try store.lookup(digest: record.sha256) != nil)
        #expect(try store.recordedStat(record.sha256) == Store.currentStat(record.path))
    }

    @Test func theBlobStatMigrationIsNamedV4() throws {
        let (store, _, dir) = try storeWithBlob()
        defer { PosixFile.removeTree(dir) }
        let applied = try store.db.read { db in try Store.migrator.appliedIdentifiers(db) }
        #expect(applied.contains("v4-blob-stat"))
    }

    @Test func aCommitDoesNotTrustAChangedFileAlreadyAtTheBlobsPath() throws {
        let bytes = testBytes(200_000)
        let (store, record, dir) = try storeWithBlob(bytes)
        defer { PosixFile.removeTree(dir) }
        chmod(record.path, 0o644)
        let f = try PosixFile(path: record.path, flags: O_WRONLY)
        try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try f.write($0, at: 0) }
        try writeFile(dir + "-again", bytes)
        defer { unlink(dir + "-again") }
        let again = try store.importFile(dir + "-again", url: nil)
        #expect(PosixFile.readAll(again.path) == bytes)
    }

    @Test func aSecondHolderCannotTakeTheCacheLockAndSeesWhoHoldsIt() throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        _ = try Store(root: dir)
        let first = try #require(try CacheLock.tryAcquire(root: dir, command: "serve"))
        #expect(try CacheLock.tryAcquire(root: dir, command: "serve") == nil)
        #expect(CacheLock.holder(root: dir) == CacheLock.Holder(pid: getpid(), command: "serve"))
        withExtendedLifetime(first) {}
    }

    @Test func aDownloadLockIsHeldUntilReleasedThenTakenAgain() async throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let store = try Store(root: dir)
        let first = try await DownloadLock.acquire(partialDir: store.partialDir, url: "http://h/a")
        let taken = Mutex(false)
        let waiter = Task {
            let lock = try await DownloadLock.acquire(partialDir: store.partialDir, url: "http://h/a", timeout: .seconds(10))
            taken.withLock { $0 = true }
            return lock
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(!taken.withLock { $0 })  // the waiter waits while the first holds it
        first.release()
        let second = try await waiter.value
        second.release()
        #expect(PosixFile.list(store.partialDir).isEmpty)
    }

    @Test func aNodeNeverServesAPeerABlobChangedBehindItsBack() async throws {
        let node = try await TestNode.start()
        let bytes = testBytes(300_000)
        let digest = BlobDigest.of(bytes)
        try node.holds(bytes, url: "http://h/m.bin")
        let path = node.env.store.blobPath(digest)
        func status(_ p: String) async throws -> Int {
            let res = try await node.env.http.execute(HTTPClientRequest(url: node.address.baseURL + p), timeout: .seconds(5))
            _ = try await res.body.collect(upTo: 1 << 20)
            return Int(res.status.code)
        }
        #expect(try await status("/v1/blobs/\(digest.hex)") == 200)
        chmod(path, 0o644)
        let f = try PosixFile(path: path, flags: O_WRONLY)
        try [UInt8](repeating: 0, count: 8).withUnsafeBytes { try f.write($0, at: 1000) }
        #expect(try await status("/v1/blobs/\(digest.hex)") == 404)
        #expect(!PosixFile.exists(path))  // evicted: its row and its file
        await node.stop()
    }
}
