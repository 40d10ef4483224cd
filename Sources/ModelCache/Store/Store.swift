import Foundation
import GRDB
import GRDBSQLite
import Logging
import ModelCacheCore

/// A blob as the index knows it.
public struct BlobRecord: Sendable, Hashable, Codable {
    public var sha256: BlobDigest
    public var size: Int64
    public var chunkSize: Int64
    public var urls: [String]
    public var createdAt: Date
    public var lastUsedAt: Date
    public var pinned: Bool
    public var path: String
    /// Fetched from a gated or private Hub repo: never served to peers nor listed in the catalogue.
    public var isPrivate: Bool = false
    /// Where each URL's mapping to this blob came from (protocol §8).
    public var urlEvidence: [String: URLEvidence] = [:]
    /// Where the blob's digest came from: the strongest evidence of its URLs (nil: imported without a URL).
    public var digestSource: URLEvidence?
}

/// The content-addressed cache: `blobs/sha256/<hex>` files plus a SQLite index (GRDB).
///
/// Invariant: a row in `blob` exists only for a file whose whole SHA-256 was checked, fsynced and renamed into place.
/// Files are written first, the row after: a crash between the two leaves an unindexed but correct file, which
/// `adoptOrphans` (run at open) indexes again after re-hashing it.
public final class Store: Sendable {
    public let root: String
    public let blobsDir: String
    public let partialDir: String
    public let tmpDir: String
    let db: DatabasePool
    let logger: Logger

    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let d = environment["MODELCACHE_DIR"] { return d }  // "" is refused by `init`, not silently replaced
        if let x = environment["XDG_CACHE_HOME"], !x.isEmpty { return x + "/modelcache" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.cache/modelcache"
    }

    public init(root: String, logger: Logger = Logger(label: "modelcache.store")) throws {
        self.root = root
        self.blobsDir = root + "/blobs/sha256"
        self.partialDir = root + "/partial"
        self.tmpDir = root + "/tmp"
        self.logger = logger
        try Store.claim(root, logger: logger)
        for d in [blobsDir, partialDir, tmpDir] { try PosixFile.makeDirectories(d) }
        var config = Configuration()
        config.busyMode = .timeout(10)
        // Persistent WAL: the -wal and -shm files stay when the last connection closes, so the next process to open
        // the cache (a CLI fetch without a node) does not re-create them with an fsync of the file and the folder.
        config.prepareDatabase { db in
            var on: CInt = 1
            _ = sqlite3_file_control(db.sqliteConnection, nil, 10, &on)  // 10: SQLITE_FCNTL_PERSIST_WAL (a macro Swift does not import)
        }
        do {
            db = try Store.openIndex(root: root, configuration: config)
        } catch let e as DatabaseError where e.resultCode == .SQLITE_CANTOPEN || e.resultCode == .SQLITE_READONLY
                    || e.resultCode == .SQLITE_PERM || e.resultCode == .SQLITE_AUTH {
            throw CacheFolderError.readOnly(root)
        }
        Store.shareIndexWithGroup(root: root)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE blob (
                    sha256 TEXT PRIMARY KEY NOT NULL,
                    size INTEGER NOT NULL,
                    chunkSize INTEGER NOT NULL,
                    chunks BLOB NOT NULL,            -- 32 raw bytes per chunk digest
                    createdAt DOUBLE NOT NULL,
                    lastUsedAt DOUBLE NOT NULL,
                    pinned BOOLEAN NOT NULL DEFAULT 0
                );
                CREATE TABLE url (
                    url TEXT PRIMARY KEY NOT NULL,
                    sha256 TEXT NOT NULL REFERENCES blob(sha256) ON DELETE CASCADE,
                    etag TEXT,
                    lastModified TEXT,
                    seenAt DOUBLE NOT NULL
                );
                CREATE INDEX url_sha256 ON url(sha256);
                """)
        }
        m.registerMigration("v2-jobs") { db in
            try db.execute(sql: """
                CREATE TABLE job (
                    id TEXT PRIMARY KEY NOT NULL,
                    body TEXT NOT NULL,              -- the Job as JSON (protocol §10)
                    createdAt DOUBLE NOT NULL,
                    updatedAt DOUBLE NOT NULL
                );
                """)
        }
        m.registerMigration("v3-hub") { db in
            try db.execute(sql: """
                ALTER TABLE blob ADD COLUMN private BOOLEAN NOT NULL DEFAULT 0;
                CREATE TABLE hub_ref (                -- a repo's revision (branch, tag, commit) → commit
                    kind TEXT NOT NULL, repo TEXT NOT NULL, revision TEXT NOT NULL,
                    commitID TEXT NOT NULL,
                    info BLOB,                       -- the upstream's /api/{kind}/{repo}/revision/{revision} JSON
                    public BOOLEAN NOT NULL,
                    updatedAt DOUBLE NOT NULL,
                    PRIMARY KEY (kind, repo, revision)
                );
                CREATE TABLE hub_tree (               -- a tree listing, all pages merged, Xet stripped
                    kind TEXT NOT NULL, repo TEXT NOT NULL, revision TEXT NOT NULL, query TEXT NOT NULL,
                    body BLOB NOT NULL,
                    public BOOLEAN NOT NULL,
                    updatedAt DOUBLE NOT NULL,
                    PRIMARY KEY (kind, repo, revision, query)
                );
                CREATE TABLE hub_file (               -- a file at a commit: what a resolve HEAD answers
                    kind TEXT NOT NULL, repo TEXT NOT NULL, commitID TEXT NOT NULL, path TEXT NOT NULL,
                    size INTEGER, etag TEXT NOT NULL, sha256 TEXT,
                    public BOOLEAN NOT NULL,
                    updatedAt DOUBLE NOT NULL,
                    PRIMARY KEY (kind, repo, commitID, path)
                );
                """)
        }
        registerBlobStatMigration(&m)
        m.registerMigration("v5-url-evidence") { db in
            // Mappings made before evidence was recorded could have come from a --sha256 hit or a peer's word:
            // they stay usable here but are not advertised until an import (`add --url`) or a new fetch records why.
            try db.execute(sql: "ALTER TABLE url ADD COLUMN evidence TEXT NOT NULL DEFAULT 'unknown'")
        }
        registerRegistryMigration(&m)
        registerCatalogueGenerationMigration(&m)
        return m
    }

    public func blobPath(_ d: BlobDigest) -> String { blobsDir + "/" + d.hex }

    // MARK: Lookups

    /// The blob, if its file is there and still holds its bytes (re-hashed first when its stat changed since commit).
    public func lookup(digest: BlobDigest) throws -> BlobRecord? {
        guard let r = try db.read({ db in try Store.record(db, digest: digest, blobPath: blobPath) }) else { return nil }
        return try trusted(r)
    }

    public func lookup(url: String) throws -> BlobRecord? {
        let hex = try db.read { db in
            try String.fetchOne(db, sql: "SELECT sha256 FROM url WHERE url = ? AND evidence != ?", arguments: [url, URLEvidence.user.rawValue])
        }
        guard let hex, let d = BlobDigest(ifValid: hex) else { return nil }
        return try lookup(digest: d)
    }

    /// The evidence for a URL's mapping to a blob (protocol §8), nil when the URL does not map to it.
    public func evidence(of url: String, digest: BlobDigest) throws -> URLEvidence? {
        try db.read { db in
            try String.fetchOne(db, sql: "SELECT evidence FROM url WHERE url = ? AND sha256 = ?", arguments: [url, digest.hex])
        }.map { URLEvidence(rawValue: $0) ?? .unknown }
    }

    public func manifest(of digest: BlobDigest) throws -> Manifest? {
        try db.read { db -> Manifest? in
            guard let row = try Row.fetchOne(db, sql: "SELECT size, chunkSize, chunks FROM blob WHERE sha256 = ?", arguments: [digest.hex]) else { return nil }
            let raw: Data = row["chunks"]
            let bytes = [UInt8](raw)
            var chunks: [BlobDigest] = []
            for i in stride(from: 0, to: bytes.count, by: 32) { chunks.append(try BlobDigest(raw: bytes[i..<i + 32])) }
            return try Manifest(sha256: digest, layout: ChunkLayout(size: row["size"], chunkSize: row["chunkSize"]), chunks: chunks)
        }
    }

    /// Every blob, most recently used first.
    public func list() throws -> [BlobRecord] {
        try db.read { db in try Store.records(db, orderBy: "lastUsedAt DESC", blobPath: blobPath) }
    }

    static func record(_ db: Database, digest: BlobDigest, blobPath: (BlobDigest) -> String) throws -> BlobRecord? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM blob WHERE sha256 = ?", arguments: [digest.hex]) else { return nil }
        let urls = try Row.fetchAll(db, sql: "SELECT url, evidence FROM url WHERE sha256 = ? ORDER BY url", arguments: [digest.hex])
        return record(row, digest: digest, urls: urls.map { ($0["url"], $0["evidence"]) }, blobPath: blobPath)
    }

    /// Every blob in `orderBy` order, read with two statements whatever their number (one per blob made `list` and
    /// the catalogue cost a statement compilation per blob: bench/scale.sh).
    static func records(_ db: Database, orderBy: String, blobPath: (BlobDigest) -> String) throws -> [BlobRecord] {
        var urls: [String: [(url: String, evidence: String)]] = [:]
        let urlRows = try Row.fetchCursor(db, sql: "SELECT sha256, url, evidence FROM url ORDER BY sha256, url")
        while let u = try urlRows.next() { urls[u["sha256"] as String, default: []].append((u["url"], u["evidence"])) }
        var out: [BlobRecord] = []
        let rows = try Row.fetchCursor(db, sql: "SELECT * FROM blob ORDER BY \(orderBy)")
        while let row = try rows.next() {
            let hex: String = row["sha256"]
            guard let d = BlobDigest(ifValid: hex) else { continue }
            out.append(record(row, digest: d, urls: urls[hex] ?? [], blobPath: blobPath))
        }
        return out
    }

    /// A `blob` row and its URLs (sorted, with their evidence) as a record.
    private static func record(_ row: Row, digest: BlobDigest, urls: [(url: String, evidence: String)],
                               blobPath: (BlobDigest) -> String) -> BlobRecord {
        var evidence: [String: URLEvidence] = [:]
        for u in urls { evidence[u.url] = URLEvidence(rawValue: u.evidence) ?? .unknown }
        return BlobRecord(
            sha256: digest, size: row["size"], chunkSize: row["chunkSize"], urls: urls.map(\.url),
            createdAt: Date(timeIntervalSince1970: row["createdAt"]),
            lastUsedAt: Date(timeIntervalSince1970: row["lastUsedAt"]),
            pinned: row["pinned"], path: blobPath(digest), isPrivate: row["private"], urlEvidence: evidence,
            digestSource: evidence.values.min())
    }

    public func touch(_ digest: BlobDigest) throws {
        try db.write { db in
            try db.execute(sql: "UPDATE blob SET lastUsedAt = ? WHERE sha256 = ?", arguments: [Date().timeIntervalSince1970, digest.hex])
        }
    }

    /// Maps a URL to a stored blob (two URLs with the same bytes share one blob), with the evidence for it
    /// (protocol §8). A `--sha256` note never replaces a mapping someone vouched for (`URLEvidence.replaces`).
    public func addURL(_ url: String, to digest: BlobDigest, evidence: URLEvidence, etag: String? = nil,
                       lastModified: String? = nil) throws {
        try db.write { db in
            if let old = try String.fetchOne(db, sql: "SELECT evidence FROM url WHERE url = ?", arguments: [url]),
               !evidence.replaces(URLEvidence(rawValue: old) ?? .unknown) { return }
            try db.execute(sql: """
                INSERT INTO url (url, sha256, etag, lastModified, seenAt, evidence) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(url) DO UPDATE SET sha256 = excluded.sha256, etag = excluded.etag,
                    lastModified = excluded.lastModified, seenAt = excluded.seenAt, evidence = excluded.evidence
                """, arguments: [url, digest.hex, etag, lastModified, Date().timeIntervalSince1970, evidence.rawValue])
        }
    }

    // MARK: Commit

    /// Moves a fully written file into the store. The caller has checked `manifest.sha256` against the bytes;
    /// this fsyncs, renames into `blobs/sha256/<hex>` and indexes. If the blob is already stored, the file is dropped.
    @discardableResult
    public func commit(file path: String, manifest: Manifest, url: String?, evidence: URLEvidence, etag: String? = nil,
                       lastModified: String? = nil, isPrivate: Bool = false) throws -> BlobRecord {
        let dest = blobPath(manifest.sha256)
        var renamed = false
        if try lookup(digest: manifest.sha256) != nil {  // stored and still right (re-hashed if its stat changed)
            unlink(path)
        } else {
            let f = try PosixFile(path: path, flags: O_RDWR)
            let size = try f.size()
            if size > manifest.size {  // preallocated beyond the end: cannot happen with exact preallocation, but be safe
                ftruncate(f.fd, off_t(manifest.size))
            }
            guard try f.size() == manifest.size else { throw ModelCacheError.sizeMismatch(expected: manifest.size, got: size) }
            try f.sync()
            guard fchmod(f.fd, 0o444) == 0 else { throw PosixFile.error(path, "chmod") }
            try PosixFile.rename(path, to: dest)
            renamed = true
        }
        do {
            try index(manifest: manifest, isPrivate: isPrivate)
            if renamed { try recordStat(of: manifest.sha256) }
            if let url { try addURL(url, to: manifest.sha256, evidence: evidence, etag: etag, lastModified: lastModified) }
        } catch {
            // Not fully indexed: remove the file we just renamed (ours) and its row if any; say "disk full" when that is why.
            if renamed { try? drop(manifest.sha256); unlink(dest) }
            throw Store.diskFullOr(error, path: root + "/index.sqlite", needed: manifest.size)
        }
        logger.info("blob committed", metadata: ["blob.sha256": "\(manifest.sha256)", "blob.size": "\(manifest.size)"])
        return try lookupAfterWrite(manifest.sha256)
    }

    /// A blob stored once as private becomes public when a public source delivers the same bytes (never the reverse).
    func index(manifest: Manifest, isPrivate: Bool = false) throws {
        let raw = Data(manifest.chunks.flatMap { d in stride(from: 0, to: 64, by: 2).map { i in
            let s = d.hex.utf8.dropFirst(i).prefix(2)
            return UInt8(String(decoding: s, as: UTF8.self), radix: 16)!
        } })
        let now = Date().timeIntervalSince1970
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO blob (sha256, size, chunkSize, chunks, createdAt, lastUsedAt, private) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(sha256) DO UPDATE SET lastUsedAt = excluded.lastUsedAt, private = private AND excluded.private
                """, arguments: [manifest.sha256.hex, manifest.size, manifest.chunkSize, raw, now, now, isPrivate])
        }
    }

    /// Imports a local file (say from a USB stick) so the node serves it: hashed, copied into tmp/, committed.
    public func importFile(_ source: String, url: String?, expected: BlobDigest? = nil,
                           chunkSize: Int64 = ChunkLayout.defaultChunkSize) throws -> BlobRecord {
        let manifest = try FileHasher.manifest(of: source, chunkSize: chunkSize)
        if let expected, expected != manifest.sha256 { throw ModelCacheError.digestMismatch(expected: expected, got: manifest.sha256) }
        if let existing = try lookup(digest: manifest.sha256) {
            if let url { try addURL(url, to: existing.sha256, evidence: .import) }
            return try lookupAfterWrite(manifest.sha256)
        }
        let tmp = tmpDir + "/import-" + UUID().uuidString
        defer { unlink(tmp) }
        try copyFile(from: source, to: tmp, size: manifest.size)
        // Re-check the copy: the source may have changed while we read it.
        let copied = try FileHasher.manifest(of: tmp, chunkSize: chunkSize)
        guard copied == manifest else { throw ModelCacheError.digestMismatch(expected: manifest.sha256, got: copied.sha256) }
        return try commit(file: tmp, manifest: manifest, url: url, evidence: .import)
    }

    /// A blob's record read back after this process wrote it: another process (a `rm` through the node) may have
    /// removed it in between, which is an error to report, never a crash.
    func lookupAfterWrite(_ d: BlobDigest) throws -> BlobRecord {
        guard let r = try lookup(digest: d) else { throw ModelCacheError.notInCache(d.hex) }
        return r
    }

    func copyFile(from: String, to: String, size: Int64) throws {
        let src = try PosixFile(path: from, flags: O_RDONLY)
        let dst = try PosixFile(path: to, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try FilePlacement.copyBytes(from: src, to: dst, size: size)
    }

    // MARK: Removal and verification

    /// Removes a blob by digest, or the blob a URL maps to. Returns the removed record.
    public func remove(_ what: String) throws -> BlobRecord {
        let what = try expandDigestPrefix(what)
        let record: BlobRecord?
        if let d = BlobDigest(ifValid: what) {
            record = try lookupEvenIfMissing(d)
        } else {
            let hex = try db.read { db in try String.fetchOne(db, sql: "SELECT sha256 FROM url WHERE url = ?", arguments: [what]) }
            record = try hex.flatMap(BlobDigest.init(ifValid:)).flatMap(lookupEvenIfMissing)
        }
        guard let record else { throw ModelCacheError.notInCache(what) }
        try drop(record.sha256)
        return record
    }

    func lookupEvenIfMissing(_ d: BlobDigest) throws -> BlobRecord? {
        try db.read { db in try Store.record(db, digest: d, blobPath: blobPath) }
    }

    func drop(_ d: BlobDigest) throws {
        try db.write { db in
            try db.execute(sql: "DELETE FROM url WHERE sha256 = ?", arguments: [d.hex])
            try db.execute(sql: "DELETE FROM blob WHERE sha256 = ?", arguments: [d.hex])
        }
        unlink(blobPath(d))
    }

    public struct VerifyReport: Sendable, Codable {
        public var sha256: BlobDigest
        public var ok: Bool
        public var problem: String?
    }

    /// Re-hashes every blob; a bad or missing one is removed from the index (and its file deleted).
    public func verifyAll(progress: (BlobRecord) -> Void = { _ in }) throws -> [VerifyReport] {
        var out: [VerifyReport] = []
        for record in try db.read({ db in try Store.records(db, orderBy: "sha256", blobPath: blobPath) }) {
            progress(record)
            var problem: String? = nil
            if let size = PosixFile.fileSize(record.path) {
                if size != record.size { problem = "size \(size), expected \(record.size)" } else {
                    do {
                        let m = try FileHasher.manifest(of: record.path, chunkSize: record.chunkSize)
                        if m.sha256 != record.sha256 { problem = "sha256 is \(m.sha256.hex)" }
                        else if let indexed = try manifest(of: record.sha256), indexed != m { problem = "chunk digests differ from the index" }
                    } catch { problem = "\(error)" }
                }
            } else { problem = "file missing" }
            if let problem {
                logger.warning("bad blob removed", metadata: ["blob.sha256": "\(record.sha256)", "problem": "\(problem)"])
                try drop(record.sha256)
            } else {
                try recordStat(of: record.sha256)  // re-hashed and right: trusted as it is now
            }
            out.append(VerifyReport(sha256: record.sha256, ok: problem == nil, problem: problem))
        }
        return out
    }
}
