import Foundation
import GRDB
import ModelCacheCore

/// The node's Hugging Face metadata cache (protocol §13): revisions, tree listings and files, so that a node (and
/// its peers) can answer the client with the upstream unreachable.
extension Store {
    public struct HubRef: Sendable, Equatable {
        public var commit: String
        public var info: [UInt8]?
        public var isPublic: Bool
    }

    public func saveHubRef(_ repo: HubRepo, revision: String, commit: String, info: [UInt8]?, isPublic: Bool) throws {
        try db.write { db in
            // Never let a private answer replace a public one's info, nor an info-less one erase it.
            try db.execute(sql: """
                INSERT INTO hub_ref (kind, repo, revision, commitID, info, public, updatedAt) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(kind, repo, revision) DO UPDATE SET
                    info = CASE WHEN excluded.commitID = commitID THEN coalesce(excluded.info, info) ELSE excluded.info END,
                    commitID = excluded.commitID, public = excluded.public, updatedAt = excluded.updatedAt
                """, arguments: [repo.kind.rawValue, repo.id, revision, commit, info.map { Data($0) }, isPublic, Date().timeIntervalSince1970])
        }
    }

    public func hubRef(_ repo: HubRepo, revision: String) throws -> HubRef? {
        try db.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT commitID, info, public FROM hub_ref WHERE kind = ? AND repo = ? AND revision = ?",
                                             arguments: [repo.kind.rawValue, repo.id, revision]) else { return nil }
            return HubRef(commit: row["commitID"], info: (row["info"] as Data?).map { [UInt8]($0) }, isPublic: row["public"])
        }
    }

    public func saveHubTree(_ repo: HubRepo, revision: String, query: String, body: [UInt8], isPublic: Bool) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO hub_tree (kind, repo, revision, query, body, public, updatedAt) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [repo.kind.rawValue, repo.id, revision, query, Data(body), isPublic, Date().timeIntervalSince1970])
        }
    }

    /// A stored listing: (body, public).
    public func hubTree(_ repo: HubRepo, revision: String, query: String) throws -> ([UInt8], Bool)? {
        try db.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT body, public FROM hub_tree WHERE kind = ? AND repo = ? AND revision = ? AND query = ?",
                                             arguments: [repo.kind.rawValue, repo.id, revision, query]) else { return nil }
            return ([UInt8](row["body"] as Data), row["public"])
        }
    }

    public func saveHubFile(_ f: HubFileMeta) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO hub_file (kind, repo, commitID, path, size, etag, sha256, public, updatedAt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(kind, repo, commitID, path) DO UPDATE SET size = coalesce(excluded.size, size), etag = excluded.etag,
                    sha256 = coalesce(excluded.sha256, sha256), public = excluded.public OR public, updatedAt = excluded.updatedAt
                """, arguments: [f.repo.kind.rawValue, f.repo.id, f.commit, f.path, f.size, f.etag, f.sha256?.hex, f.isPublic,
                                 Date().timeIntervalSince1970])
        }
    }

    public func hubFile(_ repo: HubRepo, commit: String, path: String) throws -> HubFileMeta? {
        try db.read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT size, etag, sha256, public FROM hub_file WHERE kind = ? AND repo = ? AND commitID = ? AND path = ?
                """, arguments: [repo.kind.rawValue, repo.id, commit, path]) else { return nil }
            return HubFileMeta(repo: repo, commit: commit, path: path, size: row["size"], etag: row["etag"],
                               sha256: (row["sha256"] as String?).flatMap(BlobDigest.init(ifValid:)), isPublic: row["public"])
        }
    }

    /// A public source vouched for these bytes: the blob may be served to peers and advertised.
    public func markPublic(_ d: BlobDigest) throws {
        try db.write { db in try db.execute(sql: "UPDATE blob SET private = 0 WHERE sha256 = ?", arguments: [d.hex]) }
    }
}
