/// How a blob of `size` bytes is cut into fixed-size chunks. The last chunk may be shorter.
///
/// The default chunk size is 4 MiB (see protocol/PROTOCOL.md, "Chunks"): small enough that a crash or a bad peer
/// costs little and that a 256 MiB file gives a swarm 64 pieces to spread, large enough that a 10 GiB blob has
/// 2,560 chunks (a 170 KB manifest) and a Range request's overhead is negligible next to its body.
public struct ChunkLayout: Hashable, Sendable, Codable {
    public static let defaultChunkSize: Int64 = 4 * 1024 * 1024
    public static let minimumChunkSize: Int64 = 16 * 1024
    public static let maximumChunkSize: Int64 = 64 * 1024 * 1024

    public let size: Int64
    public let chunkSize: Int64

    public init(size: Int64, chunkSize: Int64 = ChunkLayout.defaultChunkSize) throws(ModelCacheError) {
        guard size >= 0 else { throw .invalidManifest("negative size \(size)") }
        guard ChunkLayout.isValidChunkSize(chunkSize) else {
            throw .invalidManifest("chunk size \(chunkSize) is not a power of two between 16 KiB and 64 MiB")
        }
        // A size from an origin or a peer may be anything up to Int64.max: past 2^24 chunks (64 TiB in 4 MiB chunks)
        // the chunk bitmaps alone would take more memory than a node has. Refuse rather than trap on allocation.
        guard size / chunkSize < Int64(ChunkLayout.maximumChunkCount) else {
            throw .invalidManifest("\(size) bytes in \(chunkSize)-byte chunks is more than \(ChunkLayout.maximumChunkCount) chunks")
        }
        self.size = size
        self.chunkSize = chunkSize
    }

    /// The most chunks a blob may have (a 2 MiB bitmap).
    public static let maximumChunkCount = 1 << 24

    /// For values already validated (a decoded manifest): no check, no throw.
    init(validated size: Int64, chunkSize: Int64) {
        self.size = size
        self.chunkSize = chunkSize
    }

    public static func isValidChunkSize(_ c: Int64) -> Bool {
        c >= minimumChunkSize && c <= maximumChunkSize && (c & (c - 1)) == 0
    }

    /// A zero-byte blob has zero chunks.
    /// (Computed without `size + chunkSize - 1`, which overflows for a size near Int64.max.)
    public var count: Int { Int(size / chunkSize + (size % chunkSize == 0 ? 0 : 1)) }

    public func range(of index: Int) -> Range<Int64> {
        precondition(index >= 0 && index < count, "chunk \(index) out of 0..<\(count)")
        let start = Int64(index) * chunkSize
        return start..<min(start + chunkSize, size)
    }

    public func length(of index: Int) -> Int64 { range(of: index).count.int64 }

    /// The chunks that a byte range touches.
    public func chunks(covering bytes: Range<Int64>) -> Range<Int> {
        guard !bytes.isEmpty else { return 0..<0 }
        let first = Int(bytes.lowerBound / chunkSize)
        let last = Int((bytes.upperBound - 1) / chunkSize)
        return first..<(last + 1)
    }
}

extension Int {
    var int64: Int64 { Int64(self) }
}
