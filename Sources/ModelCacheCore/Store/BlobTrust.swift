/// What the file system said about a blob file: enough to notice that something wrote to it or replaced it.
public struct BlobStat: Sendable, Equatable, Codable {
    public var size: Int64
    /// Modification time in nanoseconds since 1970.
    public var mtimeNanos: Int64
    public var inode: UInt64

    public init(size: Int64, mtimeNanos: Int64, inode: UInt64) {
        self.size = size
        self.mtimeNanos = mtimeNanos
        self.inode = inode
    }
}

/// Whether a stored blob may be served as it is (pure; `Store` does the stat, the hashing and the eviction).
///
/// The rule: the stat recorded at commit matches → trust; it changed (or none was recorded, by a version before
/// v4-blob-stat) → re-hash before serving; the re-hash is wrong → evict; right → record the new stat.
public enum BlobTrust {
    public enum Check: Equatable, Sendable {
        /// Serve without reading it.
        case trust
        /// Re-hash the file before serving it.
        case rehash
        /// The file is gone: not served (the row stays until `verify` or a new commit).
        case missing
        /// Its size is not the blob's: wrong without reading it.
        case evict
    }

    public static func check(recorded: BlobStat?, current: BlobStat?, indexedSize: Int64) -> Check {
        guard let current else { return .missing }
        guard current.size == indexedSize else { return .evict }
        guard let recorded else { return .rehash }
        return recorded == current ? .trust : .rehash
    }

    public enum Outcome: Equatable, Sendable {
        /// The bytes are right: serve, and record this stat.
        case keep
        /// The bytes are wrong (or could not be read): drop the row and the file.
        case evict
    }

    public static func afterRehash(expected: BlobDigest, got: BlobDigest?) -> Outcome {
        got == expected ? .keep : .evict
    }
}
