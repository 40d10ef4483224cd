#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import ModelCacheCore

/// Reads a Hugging Face Hub cache (`HubCacheLayout`) into `HubCacheScan`s for `modelcache hf import`. Only what
/// the client writes is taken: snapshot symlinks into the repo's own `blobs/`, 40-hex refs, `trees/*.json`; nothing
/// is followed out of the repo folder, and every walk is bounded.
public enum HubCacheScanner {
    static let maxEntries = 1_000_000
    static let maxDepth = 64

    /// The repo folders of the cache, by name.
    public static func repos(_ layout: HubCacheLayout) -> [HubRepo] {
        PosixFile.list(layout.root).sorted().compactMap { name in
            isDirectory(layout.root + "/" + name) ? HubCacheLayout.repo(folderName: name) : nil
        }
    }

    public static func scan(_ layout: HubCacheLayout, _ repo: HubRepo) -> HubCacheScan {
        var scan = HubCacheScan(repo: repo)
        let dir = layout.repoDir(repo)
        for (name, path) in walk(dir + "/refs") {
            guard let bytes = readSmall(path, limit: 256) else { continue }
            let commit = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if HubRoute.isCommit(commit), HubCacheLayout.isSafeRevision(name) { scan.refs[name] = commit }
        }
        for commit in PosixFile.list(dir + "/snapshots").sorted() where HubRoute.isCommit(commit) {
            var files: [String: String] = [:]
            for (path, full) in walk(layout.snapshotDir(repo, commit: commit), links: true) {
                guard HubCacheLayout.isSafePath(path) else { continue }
                guard let target = readLink(full) else {
                    scan.problems.append("\(repo.id)@\(commit.prefix(12))/\(path): not a link into blobs/ (skipped)")
                    continue
                }
                guard let name = layout.blobName(symlinkTarget: target, path: path, repo: repo) else {
                    scan.problems.append("\(repo.id)@\(commit.prefix(12))/\(path): links to \(target), not to a blob of this repo (skipped)")
                    continue
                }
                files[path] = name
                if scan.blobSizes[name] == nil {
                    var st = stat()
                    if lstat(layout.blobPath(repo, etag: name), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
                        scan.blobSizes[name] = Int64(st.st_size)
                    } else {
                        scan.problems.append("\(repo.id)@\(commit.prefix(12))/\(path): its blob \(name) is missing (skipped)")
                    }
                }
            }
            if !files.isEmpty { scan.snapshots[commit] = files }
            if let body = readSmall(layout.treePath(repo, commit: commit), limit: 64 << 20),
               let listing = HubTreeFile.parse(treeCache: body) {
                scan.trees[commit] = listing
            }
        }
        return scan
    }

    /// Every non-folder entry under `dir` as (path relative to `dir`, full path); symlinks are listed, not followed.
    static func walk(_ dir: String, links: Bool = false) -> [(String, String)] {
        var out: [(String, String)] = []
        var pending: [(String, Int)] = [("", 0)]
        while let (rel, depth) = pending.popLast(), out.count < maxEntries {
            let here = rel.isEmpty ? dir : dir + "/" + rel
            for name in PosixFile.list(here).sorted() {
                let r = rel.isEmpty ? name : rel + "/" + name
                var st = stat()
                guard lstat(dir + "/" + r, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: if depth < maxDepth { pending.append((r, depth + 1)) }
                case S_IFLNK where links: out.append((r, dir + "/" + r))
                case S_IFREG: out.append((r, dir + "/" + r))
                default: continue
                }
            }
        }
        return out
    }

    static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// A small regular file's bytes (nil: missing, not a regular file, or larger than `limit`).
    static func readSmall(_ path: String, limit: Int) -> [UInt8]? {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size <= limit else { return nil }
        return PosixFile.readAll(path)
    }
}
