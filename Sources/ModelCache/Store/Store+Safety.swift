#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import GRDB
import Logging
import ModelCacheCore

/// The cache folder is the tool's own (CACHEDIR.TAG), and the store's bytes stay the store's (stat at commit,
/// re-hash when it changed). The decisions are `CacheFolder` and `BlobTrust` (ModelCacheCore); this is their I/O.
extension Store {
    /// Refuses a folder that is not a cache (see `CacheFolder.decide`); writes the tag in a new or adopted one.
    static func claim(_ root: String, logger: Logger) throws {
        var st = stat()
        let exists = !root.isEmpty && stat(root, &st) == 0
        if exists && (st.st_mode & S_IFMT) != S_IFDIR {
            throw CacheFolderError.refused("\(root) is not a folder: give a folder with --cache-dir (or MODELCACHE_DIR)")
        }
        let tagPath = root + "/" + CacheFolder.tagName
        // A tag being written by another process that creates the cache right now does not make the folder "not empty".
        let entries = exists ? PosixFile.list(root).filter { !$0.hasPrefix(CacheFolder.tagName + ".") } : nil
        let tag = exists ? PosixFile.readAll(tagPath).map { Array($0.prefix(256)) } : nil
        switch CacheFolder.decide(path: root, entries: entries, tag: tag) {
        case .use:
            return
        case .refuse(let why):
            throw CacheFolderError.refused(why)
        case .create:
            try PosixFile.makeDirectories(root)
        case .adopt:
            logger.info("adopting a cache made before CACHEDIR.TAG", metadata: ["cache.dir": "\(root)"])
        }
        // Under a name of its own, then renamed: processes creating the same cache at once each write a whole tag.
        let temp = tagPath + "." + UUID().uuidString
        do {
            let f = try PosixFile(path: temp, flags: O_WRONLY | O_CREAT | O_EXCL)
            try Array(CacheFolder.tagContents.utf8).withUnsafeBytes { try f.write($0, at: 0) }
            try f.sync()
            try PosixFile.rename(temp, to: tagPath)
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// Opens the index and migrates it while holding an exclusive `flock` on the cache folder itself. Processes opening
    /// a new cache at once would otherwise race: SQLite answers "database is locked" to a second
    /// `PRAGMA journal_mode = WAL` without waiting, and GRDB checks which migrations are applied outside their
    /// transactions, so two could apply the same one ("duplicate column name"). The folder, not CACHEDIR.TAG: each
    /// process creating the cache renames a tag of its own over that name, so their locks would be on different files.
    /// Held for the open only (a few milliseconds); a node's own lock is the `lock` file, never this one.
    static func openIndex(root: String, configuration: Configuration) throws -> DatabasePool {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { if fd >= 0 { close(fd) } }  // closing releases the lock
        if fd >= 0 { while flock(fd, LOCK_EX) != 0 && errno == EINTR {} }  // no lock (a file system without flock): as before
        let db = try DatabasePool(path: root + "/index.sqlite", configuration: configuration)
        if try db.read({ try migrator.hasCompletedMigrations($0) }) == false { try migrator.migrate(db) }
        return db
    }

    /// In a folder shared with its group (see `CacheFolder.sharedIndexMode`), gives the group read and write on the
    /// index files this user owns (SQLite gives `-wal` and `-shm` the index's mode when it creates them).
    static func shareIndexWithGroup(root: String) {
        var folder = stat()
        guard stat(root, &folder) == 0 else { return }
        for name in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
            var file = stat()
            let path = root + "/" + name
            guard lstat(path, &file) == 0, (file.st_mode & S_IFMT) == S_IFREG, file.st_uid == geteuid(),
                  let mode = CacheFolder.sharedIndexMode(folderMode: UInt32(folder.st_mode), fileMode: UInt32(file.st_mode)) else { continue }
            chmod(path, mode_t(mode))
        }
    }

    /// Removes what an interrupted import left in `tmp/`: only names the tool creates (`CacheFolder.temporaryPrefixes`).
    /// Call only while holding the cache's lock (a node, or a command that changes the cache), never from a reader.
    public func removeOwnTemporaries() {
        guard PosixFile.exists(root + "/" + CacheFolder.tagName) else { return }
        for name in PosixFile.list(tmpDir) where CacheFolder.isOwnTemporary(name) {
            var st = stat()
            guard lstat(tmpDir + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            unlink(tmpDir + "/" + name)
        }
    }

    static func registerBlobStatMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v4-blob-stat") { db in
            // What stat(2) said of the blob file at commit; NULL for blobs committed before: re-hashed once on use.
            try db.execute(sql: """
                ALTER TABLE blob ADD COLUMN statSize INTEGER;
                ALTER TABLE blob ADD COLUMN statMtimeNanos INTEGER;
                ALTER TABLE blob ADD COLUMN statInode INTEGER;
                """)
        }
    }

    static func currentStat(_ path: String) -> BlobStat? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let (s, ns) = (Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec))
        let (mul, o1) = s.multipliedReportingOverflow(by: 1_000_000_000)
        let (mtime, o2) = mul.addingReportingOverflow(ns)
        return BlobStat(size: Int64(st.st_size), mtimeNanos: o1 || o2 ? Int64.max : mtime, inode: UInt64(st.st_ino))
    }

    func recordedStat(_ d: BlobDigest) throws -> BlobStat? {
        try db.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT statSize, statMtimeNanos, statInode FROM blob WHERE sha256 = ?",
                                             arguments: [d.hex]),
                  let size: Int64 = row["statSize"], let mtime: Int64 = row["statMtimeNanos"], let inode: Int64 = row["statInode"]
            else { return nil }
            return BlobStat(size: size, mtimeNanos: mtime, inode: UInt64(bitPattern: inode))
        }
    }

    /// Records the blob file's current stat as the one it was trusted with.
    func recordStat(of d: BlobDigest) throws {
        guard let s = Store.currentStat(blobPath(d)) else { return }
        try db.write { db in
            try db.execute(sql: "UPDATE blob SET statSize = ?, statMtimeNanos = ?, statInode = ? WHERE sha256 = ?",
                           arguments: [s.size, s.mtimeNanos, Int64(bitPattern: s.inode), d.hex])
        }
    }

    /// `record` if its file still holds the blob's bytes: trusted when its stat is the recorded one, else re-hashed;
    /// wrong bytes are evicted (row and file: the file is the tool's own).
    func trusted(_ r: BlobRecord) throws -> BlobRecord? {
        let current = Store.currentStat(r.path)
        var check = BlobTrust.check(recorded: try recordedStat(r.sha256), current: current, indexedSize: r.size)
        if check == .rehash {
            let got = try? FileHasher.manifest(of: r.path, chunkSize: r.chunkSize).sha256
            if BlobTrust.afterRehash(expected: r.sha256, got: got) == .keep {
                // Record the stat seen before hashing: a write during the hash changes it again and is caught next time.
                if let current {
                    try db.write { db in
                        try db.execute(sql: "UPDATE blob SET statSize = ?, statMtimeNanos = ?, statInode = ? WHERE sha256 = ?",
                                       arguments: [current.size, current.mtimeNanos, Int64(bitPattern: current.inode), r.sha256.hex])
                    }
                }
                logger.info("blob changed on disk but still right; stat recorded", metadata: ["blob.sha256": "\(r.sha256)"])
                check = .trust
            } else {
                check = .evict
            }
        }
        switch check {
        case .trust: return r
        case .missing: return nil
        case .evict, .rehash:
            logger.warning("blob changed on disk and its bytes are wrong: evicted", metadata: [
                "blob.sha256": "\(r.sha256)", "blob.path": "\(r.path)"])
            try drop(r.sha256)
            return nil
        }
    }

    /// A full disk (SQLite's SQLITE_FULL, or ENOSPC) as `diskFull` naming `path`; any other error unchanged.
    static func diskFullOr(_ error: any Error, path: String, needed: Int64) -> any Error {
        if let e = error as? DatabaseError, e.resultCode == .SQLITE_FULL { return ModelCacheError.diskFull(path: path, needed: needed) }
        return error
    }
}
