import Foundation

/// The Hugging Face Hub cache on disk, as `huggingface_hub` (2.4.0) lays it out and reads it offline:
///
/// ```
/// <hub cache>/models--org--name/            (datasets--…, spaces--…)
///     blobs/<etag>                          the bytes; etag = sha256 for LFS files, the git blob sha1 otherwise
///     snapshots/<commit>/<path>             relative symlinks to ../../blobs/<etag> (one more ../ per folder)
///     refs/<revision>                       the commit a branch or tag named (no newline)
///     trees/<commit>.json                   the commit's whole file listing (written by snapshot downloads)
/// ```
public struct HubCacheLayout: Sendable, Equatable {
    /// The Hub cache folder (`HF_HUB_CACHE`).
    public var root: String

    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    /// `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
    /// `~/.cache/huggingface/hub` (`huggingface_hub/constants.py`; empty values count as set, as in Python).
    public static func defaultRoot(environment env: [String: String], home: String) -> String {
        if let c = env["HF_HUB_CACHE"] { return expandHome(c, home: home) }
        if let c = env["HUGGINGFACE_HUB_CACHE"] { return expandHome(c, home: home) }
        return hfHome(environment: env, home: home) + "/hub"
    }

    /// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
    public static func hfHome(environment env: [String: String], home: String) -> String {
        if let h = env["HF_HOME"] { return expandHome(h, home: home) }
        return (env["XDG_CACHE_HOME"] ?? home + "/.cache") + "/huggingface"
    }

    /// The token the client would send: `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`; non-empty), else the token file (`HF_TOKEN_PATH`, else
    /// `HF_HOME/token`) read by the caller and passed as `fileContents`; blank means none; none at all with
    /// `HF_HUB_DISABLE_IMPLICIT_TOKEN` set.
    public static func token(environment env: [String: String], fileContents: String?) -> String? {
        // HF_HUB_DISABLE_IMPLICIT_TOKEN: only a token passed explicitly (--token) is sent.
        if let off = env["HF_HUB_DISABLE_IMPLICIT_TOKEN"]?.lowercased(), ["1", "on", "yes", "true"].contains(off) { return nil }
        if let t = (env["HF_TOKEN"] ?? env["HUGGING_FACE_HUB_TOKEN"])?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty { return t }
        if let t = fileContents?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty { return t }
        return nil
    }

    public static func tokenPath(environment env: [String: String], home: String) -> String {
        env["HF_TOKEN_PATH"].map { expandHome($0, home: home) } ?? hfHome(environment: env, home: home) + "/token"
    }

    public static func expandHome(_ p: String, home: String) -> String {
        p == "~" ? home : p.hasPrefix("~/") ? home + p.dropFirst(1) : p
    }

    /// `models--org--name` (`repo_folder_name`).
    public static func folderName(_ repo: HubRepo) -> String {
        ([repo.kind.rawValue] + repo.id.split(separator: "/").map(String.init)).joined(separator: "--")
    }

    /// The repo a folder name names; nil for anything else (`.locks`, stray files, a name with a `/`).
    public static func repo(folderName name: String) -> HubRepo? {
        let parts = name.components(separatedBy: "--")
        guard parts.count == 2 || parts.count == 3, let kind = HubRepo.Kind(rawValue: parts[0]),
              parts.dropFirst().allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("/") }) else { return nil }
        return HubRepo(kind: kind, id: parts.dropFirst().joined(separator: "/"))
    }

    public func repoDir(_ repo: HubRepo) -> String { root + "/" + HubCacheLayout.folderName(repo) }
    public func blobPath(_ repo: HubRepo, etag: String) -> String { repoDir(repo) + "/blobs/" + etag }
    public func snapshotDir(_ repo: HubRepo, commit: String) -> String { repoDir(repo) + "/snapshots/" + commit }
    public func refPath(_ repo: HubRepo, revision: String) -> String { repoDir(repo) + "/refs/" + revision }
    public func treePath(_ repo: HubRepo, commit: String) -> String { repoDir(repo) + "/trees/" + commit + ".json" }

    /// The symlink a snapshot file is: `../../blobs/<etag>` from `snapshots/<commit>/`, one `../` more per folder
    /// of `path` (what `os.path.relpath(blob, dirname(pointer))` gives the client).
    public static func symlinkTarget(path: String, etag: String) -> String {
        let depth = path.split(separator: "/", omittingEmptySubsequences: false).count - 1
        return String(repeating: "../", count: depth + 2) + "blobs/" + etag
    }

    /// The blob name a snapshot symlink points to, if it points into this repo's `blobs/` the way the client
    /// makes them (relative, right depth; or absolute into `repoDir/blobs/`); nil for anything else.
    public func blobName(symlinkTarget target: String, path: String, repo: HubRepo) -> String? {
        let name: Substring
        let absolutePrefix = repoDir(repo) + "/blobs/"
        if target.hasPrefix(absolutePrefix) {
            name = target.dropFirst(absolutePrefix.count)
        } else {
            let relPrefix = HubCacheLayout.symlinkTarget(path: path, etag: "")
            guard target.hasPrefix(relPrefix) else { return nil }
            name = target.dropFirst(relPrefix.count)
        }
        return HubCacheLayout.isBlobName(String(name)) ? String(name) : nil
    }

    /// A sha256 (LFS) or git sha1 in lower-case hex: the only names the client gives blobs.
    public static func isBlobName(_ s: String) -> Bool {
        (s.utf8.count == 64 || s.utf8.count == 40) && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// A revision that can be a `refs/` file name: no empty, `.` or `..` segment, no NUL, not absolute.
    public static func isSafeRevision(_ r: String) -> Bool {
        !r.isEmpty && !r.hasPrefix("/") && HubRoute.isSafe(path: r.split(separator: "/", omittingEmptySubsequences: false).map(String.init))
    }

    /// A repo file path that stays inside the snapshot folder.
    public static func isSafePath(_ p: String) -> Bool {
        !p.hasPrefix("/") && HubRoute.isSafe(path: p.split(separator: "/", omittingEmptySubsequences: false).map(String.init))
    }
}
