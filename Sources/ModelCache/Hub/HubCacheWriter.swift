#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import ModelCacheCore

/// Writes what `modelcache hf download` fetched into a Hugging Face Hub cache exactly as `huggingface_hub` does
/// (`HubCacheLayout`), or into a `--local-dir` folder as `hf download --local-dir` does. A Hub cache blob is a hard
/// link to the store's blob (one copy on disk; read-only, mode 0444, like the store's) where both share a file
/// system and the user owns the store's file, else a copy. Every file is written under a temporary name and renamed.
public enum HubCacheWriter {
    public enum Placed: String, Sendable, Codable {
        case linked, copied, reflinked
        /// `blobs/<etag>` was there already (the client's own download, or an earlier run): left as it is.
        case present
    }

    /// `blobs/<etag>` for a store blob. One already there is kept, unless `replace` (its bytes were found wrong).
    public static func placeBlob(_ storeBlob: String, layout: HubCacheLayout, repo: HubRepo, etag: String, replace: Bool = false) throws -> Placed {
        guard HubCacheLayout.isBlobName(etag) else { throw ModelCacheError.io(path: layout.repoDir(repo), detail: "'\(etag)' is not a blob name") }
        let dest = layout.blobPath(repo, etag: etag)
        var st = stat()
        if !replace, lstat(dest, &st) == 0 { return .present }
        try PosixFile.makeDirectories(PosixFile.parent(dest))
        let temp = PosixFile.parent(dest) + "/." + etag + ".modelcache-" + UUID().uuidString + ".tmp"
        var placed = Placed.linked
        do {
            if link(storeBlob, temp) != 0 {
                placed = try FilePlacement.copy(from: storeBlob, to: temp) == .reflink ? .reflinked : .copied
            }
            try PosixFile.rename(temp, to: dest)
        } catch {
            unlink(temp)
            throw error
        }
        return placed
    }

    /// `snapshots/<commit>/<path>` → `../../blobs/<etag>` (relative, as the client makes it).
    public static func linkSnapshotFile(layout: HubCacheLayout, repo: HubRepo, commit: String, path: String, etag: String) throws {
        guard HubRoute.isCommit(commit), HubCacheLayout.isSafePath(path) else {
            throw ModelCacheError.io(path: path, detail: "not a safe file path in a repo")
        }
        let dest = layout.snapshotDir(repo, commit: commit) + "/" + path
        let target = HubCacheLayout.symlinkTarget(path: path, etag: etag)
        if HubCacheScanner.readLink(dest) == target { return }
        try PosixFile.makeDirectories(PosixFile.parent(dest))
        let temp = PosixFile.parent(dest) + "/.modelcache-" + UUID().uuidString + ".tmp"
        guard symlink(target, temp) == 0 else { throw PosixFile.error(temp, "symlink") }
        do { try PosixFile.rename(temp, to: dest) } catch { unlink(temp); throw error }
    }

    /// `refs/<revision>` = commit (no newline), unless it says so already.
    public static func writeRef(layout: HubCacheLayout, repo: HubRepo, revision: String, commit: String) throws {
        guard !HubRoute.isCommit(revision) else { return }
        guard HubCacheLayout.isSafeRevision(revision) else { throw ModelCacheError.io(path: revision, detail: "not a revision name that can be a file") }
        let path = layout.refPath(repo, revision: revision)
        if HubCacheScanner.readSmall(path, limit: 256) == Array(commit.utf8) { return }
        try PosixFile.makeDirectories(PosixFile.parent(path))
        try writeFile(path, Array(commit.utf8))
    }

    /// A file written whole under a temporary name, then renamed (mode 0644).
    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let temp = PosixFile.parent(path) + "/.modelcache-" + UUID().uuidString + ".tmp"
        do {
            let f = try PosixFile(path: temp, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
            try bytes.withUnsafeBytes { try f.write($0, at: 0) }
            try PosixFile.rename(temp, to: path)
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// `trees/<commit>.json` (a snapshot download's whole listing, as the client writes it), unless present.
    public static func writeTree(folder: String, commit: String, files: [HubTreeFile]) throws {
        let path = folder + "/trees/" + commit + ".json"
        guard HubRoute.isCommit(commit), !PosixFile.exists(path) else { return }
        try PosixFile.makeDirectories(folder + "/trees")
        try writeFile(path, HubTreeFile.treeCacheJSON(files))
    }

    /// `--local-dir`: the file at `<dir>/<path>` (the user's own copy: a reflink where the file system can, else a
    /// byte copy; never a link to the store, since such files get edited), and the client's
    /// `.cache/huggingface/download/<path>.metadata` (commit, etag, time).
    public static func placeLocal(_ storeBlob: String, dir: String, path: String, commit: String, etag: String) throws -> Placed {
        guard HubCacheLayout.isSafePath(path) else { throw ModelCacheError.io(path: path, detail: "not a safe file path in a repo") }
        let meta = dir + "/.cache/huggingface/download/" + path + ".metadata"
        let dest = dir + "/" + path
        let method = try FilePlacement.place(blob: storeBlob, at: dest, link: false)
        try PosixFile.makeDirectories(PosixFile.parent(meta))
        let ignore = dir + "/.cache/huggingface/.gitignore"
        if !PosixFile.exists(ignore) { try writeFile(ignore, Array("*".utf8)) }
        try writeFile(meta, Array("\(commit)\n\(etag)\n\(Date().timeIntervalSince1970)\n".utf8))
        return method == .reflink ? .reflinked : .copied
    }
}
