import Foundation
import GRDB
import ModelCacheCore

/// The registry mirror's manifest cache (protocol §16): manifests by digest, kept for good (their bytes were checked
/// against the digest), and tags → digest with the time they were last confirmed by the upstream.
extension Store {
    public struct RegistryManifest: Sendable, Hashable {
        public var digest: BlobDigest
        public var mediaType: String
        public var body: [UInt8]
        public var isPublic: Bool
    }

    public struct RegistryTag: Sendable, Equatable {
        public var digest: BlobDigest
        public var mediaType: String
        public var isPublic: Bool
        public var updatedAt: Date
    }

    static func registerRegistryMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v6-registry") { db in
            try db.execute(sql: """
                CREATE TABLE registry_manifest (      -- a manifest by digest: sha256(body) = digest
                    upstream TEXT NOT NULL, repo TEXT NOT NULL, digest TEXT NOT NULL,
                    mediaType TEXT NOT NULL, body BLOB NOT NULL,
                    public BOOLEAN NOT NULL,
                    updatedAt DOUBLE NOT NULL,
                    PRIMARY KEY (upstream, repo, digest)
                );
                CREATE TABLE registry_tag (           -- a tag's digest, as the upstream last said
                    upstream TEXT NOT NULL, repo TEXT NOT NULL, tag TEXT NOT NULL,
                    digest TEXT NOT NULL, mediaType TEXT NOT NULL,
                    public BOOLEAN NOT NULL,
                    updatedAt DOUBLE NOT NULL,
                    PRIMARY KEY (upstream, repo, tag)
                );
                """)
        }
    }

    /// Keeps a manifest; a public answer never becomes private again (the bytes are the same).
    public func saveRegistryManifest(upstream: String, repo: String, _ m: RegistryManifest) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO registry_manifest (upstream, repo, digest, mediaType, body, public, updatedAt) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(upstream, repo, digest) DO UPDATE SET public = excluded.public OR public, updatedAt = excluded.updatedAt
                """, arguments: [upstream, repo, m.digest.hex, m.mediaType, Data(m.body), m.isPublic, Date().timeIntervalSince1970])
        }
    }

    public func registryManifest(upstream: String, repo: String, digest: BlobDigest) throws -> RegistryManifest? {
        try db.read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT mediaType, body, public FROM registry_manifest WHERE upstream = ? AND repo = ? AND digest = ?
                """, arguments: [upstream, repo, digest.hex]) else { return nil }
            return RegistryManifest(digest: digest, mediaType: row["mediaType"], body: [UInt8](row["body"] as Data), isPublic: row["public"])
        }
    }

    public func saveRegistryTag(upstream: String, repo: String, tag: String, _ t: RegistryTag) throws {
        try db.write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO registry_tag (upstream, repo, tag, digest, mediaType, public, updatedAt) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [upstream, repo, tag, t.digest.hex, t.mediaType, t.isPublic, t.updatedAt.timeIntervalSince1970])
        }
    }

    public func registryTag(upstream: String, repo: String, tag: String) throws -> RegistryTag? {
        try db.read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT digest, mediaType, public, updatedAt FROM registry_tag WHERE upstream = ? AND repo = ? AND tag = ?
                """, arguments: [upstream, repo, tag]),
                let d = BlobDigest(ifValid: row["digest"] as String) else { return nil }
            return RegistryTag(digest: d, mediaType: row["mediaType"], isPublic: row["public"],
                               updatedAt: Date(timeIntervalSince1970: row["updatedAt"]))
        }
    }

    /// Whether the node has seen this repository answer an anonymous client (nil: it has not seen it at all).
    public func registryRepoIsPublic(upstream: String, repo: String) throws -> Bool? {
        try db.read { db in
            try Bool.fetchOne(db, sql: "SELECT max(public) FROM registry_manifest WHERE upstream = ? AND repo = ?",
                              arguments: [upstream, repo])
        }
    }
}
