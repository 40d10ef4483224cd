#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Crypto
import Foundation
import GRDB
import ModelCacheCore

/// One step of `modelcache hf import` (protocol §15), done by whoever holds the cache (the node, or the CLI under the
/// cache's lock): a blob of the Hub cache, or a repo's refs and listings.
public struct HubImportRequest: Codable, Sendable {
    public struct BlobItem: Codable, Sendable {
        /// The Hub cache's blob file (absolute).
        public var file: String
        public var blob: HubImportPlan.Blob
        public var isPrivate: Bool
        public init(file: String, blob: HubImportPlan.Blob, isPrivate: Bool) {
            self.file = file
            self.blob = blob
            self.isPrivate = isPrivate
        }
    }

    public struct Metadata: Codable, Sendable {
        public var repo: HubRepo
        public var refs: [String: String]
        public var trees: [String: [HubTreeFile]]
        public var isPublic: Bool
        public init(repo: HubRepo, refs: [String: String], trees: [String: [HubTreeFile]], isPublic: Bool) {
            self.repo = repo
            self.refs = refs
            self.trees = trees
            self.isPublic = isPublic
        }
    }

    public var blob: BlobItem?
    public var metadata: Metadata?

    public init(blob: BlobItem? = nil, metadata: Metadata? = nil) {
        self.blob = blob
        self.metadata = metadata
    }
}

public struct HubImportOutcome: Codable, Sendable {
    public enum Method: String, Codable, Sendable {
        /// Hashed and hard-linked into the store: one copy on disk (mode 0444 now, for both names).
        case linked
        /// Hashed and copied (another file system, or a file of another user).
        case copied
        /// The store had these bytes already: only the URLs and file metadata were added.
        case known
        /// The bytes do not match the blob's name (or changed while hashed): not imported.
        case refused
        /// Refs and listings saved.
        case metadata
    }

    public var method: Method
    public var sha256: BlobDigest?
    public var problem: String?
}

/// The tree listing key the client's `snapshot_download` asks for (`?recursive=true&expand=false`, canonical order).
public let hubSnapshotTreeQuery = "expand=false&recursive=true"

extension Store {
    public func importHub(_ r: HubImportRequest) throws -> HubImportOutcome {
        if let m = r.metadata {
            try saveHubMetadata(m)
            return HubImportOutcome(method: .metadata)
        }
        guard let item = r.blob else { throw ModelCacheError.io(path: root, detail: "an hf import step names neither a blob nor metadata") }
        return try importHubBlob(item)
    }

    /// Imports one Hub cache blob: skipped (metadata only) when the store already has its bytes; else linked into
    /// `tmp/` (a copy when it cannot be: another file system, another owner), hashed, checked against its name
    /// (sha256 for an LFS blob, git blob sha1 otherwise), made read-only and committed; wrong bytes are refused.
    func importHubBlob(_ item: HubImportRequest.BlobItem) throws -> HubImportOutcome {
        let b = item.blob
        if let known = try knownHubBlob(b) {
            try recordHubBlob(b, digest: known, isPrivate: item.isPrivate)
            return HubImportOutcome(method: .known, sha256: known)
        }
        guard item.file.hasPrefix("/"), HubCacheLayout.isBlobName(b.name) else {
            throw ModelCacheError.io(path: item.file, detail: "not an absolute path to a Hub cache blob")
        }
        var source = stat()
        guard lstat(item.file, &source) == 0 else {
            throw ModelCacheError.io(path: item.file, detail: "this node cannot see it (\(String(cString: strerror(errno)))): "
                                     + "a system service cannot read home folders; import into a node you run yourself")
        }
        guard (source.st_mode & S_IFMT) == S_IFREG else { return HubImportOutcome(method: .refused, problem: "not a regular file") }
        let tmp = tmpDir + "/import-" + UUID().uuidString
        defer { unlink(tmp) }
        var method = HubImportOutcome.Method.copied
        // A link only to the user's own file: the store makes its blobs read-only, which needs the owner.
        if source.st_uid == geteuid(), link(item.file, tmp) == 0 {
            method = .linked
        } else {
            _ = try FilePlacement.copy(from: item.file, to: tmp)
        }
        let before = Store.currentStat(tmp)
        let manifest = try FileHasher.manifest(of: tmp)
        let gitID = b.isLFS ? nil : try Store.gitBlobID(of: tmp)
        let after = Store.currentStat(tmp)
        guard let before, before == after else { return HubImportOutcome(method: .refused, problem: "it changed while it was hashed") }
        if b.isLFS ? manifest.sha256.hex != b.name : gitID != b.name {
            return HubImportOutcome(method: .refused, sha256: manifest.sha256,
                                    problem: "its bytes do not match its name (sha256 \(manifest.sha256.hex)\(gitID.map { ", git blob \($0)" } ?? ""))")
        }
        try commitImported(tmp, manifest: manifest, isPrivate: item.isPrivate, hashedStat: before)
        try recordHubBlob(b, digest: manifest.sha256, isPrivate: item.isPrivate)
        return HubImportOutcome(method: method, sha256: manifest.sha256)
    }

    /// The digest of a blob the store already holds for this Hub blob (no hashing needed), if any.
    public func knownHubBlob(_ b: HubImportPlan.Blob) throws -> BlobDigest? {
        if b.isLFS { return try BlobDigest(ifValid: b.name).flatMap { try lookup(digest: $0) }?.sha256 }
        // A plain file: known when every file naming it has this etag and a sha256 whose blob is stored.
        var digest: BlobDigest? = nil
        for f in b.files {
            guard let m = try hubFile(f.repo, commit: f.commit, path: f.path), m.etag == b.name, let d = m.sha256,
                  digest == nil || digest == d else { return nil }
            digest = d
        }
        return try digest.flatMap { try lookup(digest: $0) }?.sha256
    }

    /// fsync, read-only, renamed into `blobs/`, indexed; its stat must still be the one that was hashed.
    func commitImported(_ tmp: String, manifest: Manifest, isPrivate: Bool, hashedStat: BlobStat) throws {
        let dest = blobPath(manifest.sha256)
        if try lookup(digest: manifest.sha256) != nil {
            try index(manifest: manifest, isPrivate: isPrivate)
            return
        }
        let f = try PosixFile(path: tmp, flags: O_RDONLY)
        try f.sync()
        guard fchmod(f.fd, 0o444) == 0 else { throw PosixFile.error(tmp, "chmod") }
        try PosixFile.rename(tmp, to: dest)
        do {
            try index(manifest: manifest, isPrivate: isPrivate)
            try recordStat(of: manifest.sha256)
            guard let now = Store.currentStat(dest), now == hashedStat else {
                throw ModelCacheError.io(path: dest, detail: "it changed while it was imported: run hf import again")
            }
        } catch {
            try? drop(manifest.sha256)
            throw Store.diskFullOr(error, path: root + "/index.sqlite", needed: manifest.size)
        }
        logger.info("hub blob imported", metadata: ["blob.sha256": "\(manifest.sha256)", "blob.size": "\(manifest.size)"])
    }

    /// The Hub URLs and file metadata of an imported blob. Commit URLs always; a branch's URL only when nothing
    /// maps it yet (the Hub cache's `refs/` may be older than what this node learned since).
    func recordHubBlob(_ b: HubImportPlan.Blob, digest: BlobDigest, isPrivate: Bool) throws {
        if !isPrivate { try markPublic(digest) }
        for url in b.urls {
            let isCommitURL = b.files.contains { url.contains("/resolve/" + $0.commit + "/") }
            if !isCommitURL, try db.read({ db in try Bool.fetchOne(db, sql: "SELECT 1 FROM url WHERE url = ?", arguments: [url]) }) != nil {
                continue
            }
            try addURL(url, to: digest, evidence: .import, etag: b.name)
        }
        for var f in b.files {
            f.sha256 = digest
            f.isPublic = !isPrivate
            try saveHubFile(f)
        }
    }

    /// A repo's refs and listings, each saved only when this node knows nothing of it yet (what it learned from
    /// the Hub itself is newer than a Hub cache, and a listing from the Hub is whole).
    public func saveHubMetadata(_ m: HubImportRequest.Metadata) throws {
        for (revision, commit) in m.refs where HubRoute.isCommit(commit) {
            if try hubRef(m.repo, revision: revision) == nil {
                try saveHubRef(m.repo, revision: revision, commit: commit, info: nil, isPublic: m.isPublic)
            }
        }
        for (commit, files) in m.trees where HubRoute.isCommit(commit) {
            let key = "?" + hubSnapshotTreeQuery
            if try hubTree(m.repo, revision: commit, query: key) == nil {
                try saveHubTree(m.repo, revision: commit, query: key, body: HubTreeFile.apiListing(files), isPublic: m.isPublic)
            }
        }
    }

    /// The git blob id of a file: sha1 of `blob <size>\0` + its bytes.
    static func gitBlobID(of path: String) throws(ModelCacheError) -> String {
        let file = try PosixFile(path: path, flags: O_RDONLY)
        let size = try file.size()
        var h = Insecure.SHA1()
        h.update(data: Array("blob \(size)\u{0}".utf8))
        try FileHasher.forEachBlock(of: file, range: 0..<size) { h.update(bufferPointer: $0) }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
