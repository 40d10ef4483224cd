/// Whether a folder may be used as a cache, and which of its files the tool may delete (pure: the caller lists the
/// folder and reads the tag). A cache folder is marked by a `CACHEDIR.TAG` file (the Cache Directory Tagging
/// convention, https://bford.info/cachedir/); a non-empty folder without it is never taken over, so a mistyped
/// `--cache-dir` (`""`, `/`, `/var`, a home folder) cannot make the tool write or delete anything there.
public enum CacheFolder {
    public static let tagName = "CACHEDIR.TAG"
    /// The convention's exact first line.
    public static let signature = "Signature: 8a477f597d28d172789f06886806bc55"
    public static let tagContents = signature + "\n"
        + "# This file is a cache directory tag created by modelcache (a LAN cache for AI model files).\n"
        + "# For information about cache directory tags, see https://bford.info/cachedir/\n"

    /// Prefixes of the temporary names the tool creates under `tmp/`; nothing else there is ever removed.
    public static let temporaryPrefixes = ["import-"]

    public enum Decision: Equatable, Sendable {
        /// A tagged cache: use it.
        case use
        /// Missing or empty: make the folders and write the tag.
        case create
        /// Made by a version before the tag (has `index.sqlite` and `blobs/`): write the tag and use it.
        case adopt
        /// Not the tool's: touch nothing. The reason is one line naming the folder and what to do.
        case refuse(String)
    }

    /// - Parameters:
    ///   - path: the folder as given (`--cache-dir` or the environment).
    ///   - entries: the folder's entries, or nil when it does not exist.
    ///   - tag: the first bytes of `CACHEDIR.TAG`, or nil when there is none.
    public static func decide(path: String, entries: [String]?, tag: [UInt8]?) -> Decision {
        guard !path.isEmpty else {
            return .refuse("the cache folder is an empty string (--cache-dir \"\" or MODELCACHE_DIR=\"\"): give a folder, or leave both unset for ~/.cache/modelcache")
        }
        guard let entries, !entries.isEmpty else { return .create }
        if let tag {
            if isValidTag(tag) { return .use }
            return .refuse("\(path)/\(tagName) does not start with the cache directory signature: this folder is not a modelcache cache; give another --cache-dir")
        }
        if entries.contains("index.sqlite") && entries.contains("blobs") { return .adopt }
        return .refuse("\(path) is not empty and has no \(tagName), so it is not a modelcache cache: give an empty or new folder with --cache-dir (or MODELCACHE_DIR)")
    }

    public static func isValidTag(_ bytes: [UInt8]) -> Bool {
        Array(bytes.prefix(signature.utf8.count)) == Array(signature.utf8)
    }

    /// True only for names the tool itself creates in `tmp/`.
    public static func isOwnTemporary(_ name: String) -> Bool {
        !name.contains("/") && temporaryPrefixes.contains { name.hasPrefix($0) && name.count > $0.count }
    }
}

extension CacheFolder {
    /// A cache folder its group may write (the systemd unit's `CacheDirectoryMode=2770`) is shared with that group:
    /// the index files get group read and write, so group members' commands (`fetch` reaching the system node's
    /// control socket, `ls`) can open the index. Returns the file's new permission bits, or nil to leave it.
    public static func sharedIndexMode(folderMode: UInt32, fileMode: UInt32) -> UInt32? {
        let groupWrite: UInt32 = 0o020, groupReadWrite: UInt32 = 0o060
        guard folderMode & groupWrite != 0, fileMode & groupReadWrite != groupReadWrite else { return nil }
        return (fileMode & 0o777) | groupReadWrite
    }
}
