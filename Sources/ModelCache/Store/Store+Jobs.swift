import Foundation
import GRDB
import ModelCacheCore

extension Store {
    public func saveJob(_ job: Job) throws {
        let body = String(decoding: try JSONEncoder().encode(job), as: UTF8.self)
        let now = Date().timeIntervalSince1970
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO job (id, body, createdAt, updatedAt) VALUES (?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET body = excluded.body, updatedAt = excluded.updatedAt
                """, arguments: [job.id, body, now, now])
        }
    }

    public func deleteJobs(_ ids: [String]) throws {
        try db.write { db in
            for id in ids { try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id]) }
        }
    }

    public func loadJobs() throws -> [Job] {
        try db.read { db in
            try String.fetchAll(db, sql: "SELECT body FROM job ORDER BY createdAt").compactMap {
                try? JSONDecoder().decode(Job.self, from: Data($0.utf8))
            }
        }
    }
}

extension Store {
    /// Total bytes of stored blobs.
    public func totalSize() throws -> Int64 {
        try db.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(size), 0) FROM blob") ?? 0 }
    }

    public func setPinned(_ what: String, _ pinned: Bool) throws -> BlobRecord {
        let what = try expandDigestPrefix(what)
        let record: BlobRecord?
        if let d = BlobDigest(ifValid: what) { record = try lookup(digest: d) } else { record = try lookup(url: what) }
        guard let record else { throw ModelCacheError.notInCache(what) }
        try db.write { db in
            try db.execute(sql: "UPDATE blob SET pinned = ? WHERE sha256 = ?", arguments: [pinned, record.sha256.hex])
        }
        return try lookupAfterWrite(record.sha256)
    }

    /// Evicts least-recently-used unpinned blobs until `needed` more bytes fit under `limit`; returns how many blobs
    /// it evicted and their bytes. Throws `quotaExceeded` (evicting nothing) when even evicting every unpinned blob
    /// would not make room.
    @discardableResult
    public func makeRoom(for needed: Int64, limit: Int64, keep: Set<BlobDigest> = []) throws -> (blobs: Int, bytes: Int64) {
        // Compared as `needed > limit - total` (never `total + needed`): `needed` may be an origin's Int64.max.
        let total = try totalSize()
        guard needed > limit - total else { return (0, 0) }
        let candidates = try db.read { db in
            try Row.fetchAll(db, sql: "SELECT sha256, size FROM blob WHERE pinned = 0 ORDER BY lastUsedAt ASC")
        }.compactMap { row -> (BlobDigest, Int64)? in
            guard let d = BlobDigest(ifValid: row["sha256"] as String), !keep.contains(d) else { return nil }
            return (d, row["size"])
        }
        let evictable = candidates.reduce(Int64(0)) { $0 + $1.1 }
        guard needed <= limit - total + evictable else { throw ModelCacheError.quotaExceeded(needed: needed, limit: limit) }
        var current = total
        var evicted = 0
        for (d, size) in candidates where needed > limit - current {
            logger.info("evicting blob (LRU)", metadata: ["blob.sha256": "\(d)", "blob.size": "\(size)"])
            try drop(d)
            current -= size
            evicted += 1
        }
        return (evicted, total - current)
    }
}

extension Store {
    /// How many blobs are stored.
    public func blobCount() throws -> Int {
        try db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM blob") ?? 0 }
    }
}
