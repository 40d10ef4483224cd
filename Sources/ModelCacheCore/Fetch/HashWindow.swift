/// The whole-blob hasher's window over the pieces a download writes: each chunk's bytes, as they are written, are
/// held in memory (up to `cap` bytes across all chunks) so that the hasher, when the chunk is verified and its turn
/// comes, hashes them from memory instead of reading the chunk back from the file (issue 12 §1).
///
/// Only a chunk's contiguous prefix is held, and only from one attempt: a piece at the chunk's first byte starts a
/// new attempt (the old pieces are dropped); a piece that does not continue the prefix (a gap, or an overlap such as
/// a second writer) drops the chunk's pieces and holds nothing more of it. When the cap is reached, the chunk keeps
/// the prefix it has and holds nothing more. `take` hands over what is held; the rest of the chunk is read from the
/// file. Generic over the piece type (a NIO `ByteBuffer` in the node, byte arrays in tests); no I/O.
public struct HashWindow<Piece> {
    public let layout: ChunkLayout
    /// Most bytes held at once.
    public let cap: Int
    /// Bytes held right now, over every chunk.
    public private(set) var heldBytes = 0 {
        didSet { peakHeldBytes = max(peakHeldBytes, heldBytes) }
    }
    /// The most bytes held at any time.
    public private(set) var peakHeldBytes = 0

    fileprivate struct Held {
        var pieces: [Piece] = []
        /// Bytes from the chunk's first byte that `pieces` cover.
        var bytes: Int64 = 0
        /// Nothing more is held for this attempt (cap reached, gap or overlap).
        var closed = false
    }
    private var held: [Int: Held] = [:]

    public init(layout: ChunkLayout, cap: Int) {
        self.layout = layout
        self.cap = max(0, cap)
    }

    /// Chunks with an entry (held pieces or a closed attempt).
    public var trackedChunks: Int { held.count }

    /// A piece of `count` bytes just written at `offset`. Returns whether the window holds it.
    @discardableResult
    public mutating func offer(_ piece: Piece, count: Int, at offset: Int64) -> Bool {
        guard count > 0, offset >= 0, offset < layout.size else { return false }
        let chunk = Int(offset / layout.chunkSize)
        guard chunk < layout.count else { return false }
        let range = layout.range(of: chunk)
        // A piece crossing the chunk's end (never written so by the engine) is not held, and ends the attempt.
        guard Int64(count) <= range.upperBound - offset else { drop(chunk, close: true); return false }
        if offset == range.lowerBound { drop(chunk, close: false) }
        var h = held[chunk] ?? Held()
        guard !h.closed else { return false }
        guard offset == range.lowerBound + h.bytes else { drop(chunk, close: true); return false }
        guard heldBytes + count <= cap else {
            h.closed = true
            held[chunk] = h
            return false
        }
        h.pieces.append(piece)
        h.bytes += Int64(count)
        heldBytes += count
        held[chunk] = h
        return true
    }

    /// The held prefix of `chunk`, removed from the window: its pieces in order and how many bytes from the chunk's
    /// first byte they cover (0: read it all from the file).
    public mutating func take(chunk: Int) -> (pieces: [Piece], bytes: Int64) {
        guard let h = held.removeValue(forKey: chunk) else { return ([], 0) }
        heldBytes -= Int(h.bytes)
        return (h.pieces, h.bytes)
    }

    /// Forgets a chunk's pieces (its attempt failed, or it is not to be hashed from memory).
    public mutating func abandon(chunk: Int) {
        drop(chunk, close: false)
        held[chunk] = nil
    }

    private mutating func drop(_ chunk: Int, close: Bool) {
        guard var h = held[chunk] else {
            if close { held[chunk] = Held(closed: true) }
            return
        }
        heldBytes -= Int(h.bytes)
        h = Held(closed: close)
        held[chunk] = h
    }
}

extension HashWindow: Sendable where Piece: Sendable {}
extension HashWindow.Held: Sendable where Piece: Sendable {}
