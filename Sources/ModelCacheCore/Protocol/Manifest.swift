/// What a node knows about a blob's bytes: the whole digest, the size, and one SHA-256 per chunk.
/// Serialized as JSON (protocol/PROTOCOL.md, "Manifest"); keys are sorted so that equal manifests are equal bytes.
public struct Manifest: Hashable, Sendable, Codable {
    public static let formatVersion = 1

    public let version: Int
    public let sha256: BlobDigest
    public let size: Int64
    public let chunkSize: Int64
    public let chunks: [BlobDigest]

    public init(sha256: BlobDigest, layout: ChunkLayout, chunks: [BlobDigest]) throws(ModelCacheError) {
        guard chunks.count == layout.count else {
            throw .invalidManifest("\(chunks.count) chunk digests for \(layout.count) chunks")
        }
        self.version = Manifest.formatVersion
        self.sha256 = sha256
        self.size = layout.size
        self.chunkSize = layout.chunkSize
        self.chunks = chunks
    }

    public var layout: ChunkLayout {
        // Validated at init/decode time.
        ChunkLayout(validated: size, chunkSize: chunkSize)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let version = try c.decode(Int.self, forKey: .version)
        guard version == Manifest.formatVersion else {
            throw DecodingError.dataCorruptedError(forKey: .version, in: c, debugDescription: "unsupported manifest version \(version)")
        }
        let sha = try c.decode(BlobDigest.self, forKey: .sha256)
        let size = try c.decode(Int64.self, forKey: .size)
        let chunkSize = try c.decode(Int64.self, forKey: .chunkSize)
        let chunks = try c.decode([BlobDigest].self, forKey: .chunks)
        do {
            try self.init(sha256: sha, layout: ChunkLayout(size: size, chunkSize: chunkSize), chunks: chunks)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .chunks, in: c, debugDescription: error.description)
        }
    }
}
