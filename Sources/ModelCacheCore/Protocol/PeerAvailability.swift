import Foundation

/// A peer's answer to `GET /v1/blobs/{sha256}/availability` (protocol §11): what it holds of a blob it is
/// downloading, and what it is fetching now.
public struct PeerAvailability: Codable, Sendable, Equatable {
    public var version: Int
    public var size: Int64
    public var chunkSize: Int64
    /// Hex bitmap of verified chunks (ChunkSet encoding).
    public var have: String
    /// Hex bitmap of chunks being fetched now.
    public var claims: String
    public var complete: Bool
    /// The serving node's id (swarm members split the origin's work by it).
    public var node: String?

    public init(version: Int, size: Int64, chunkSize: Int64, have: String, claims: String, complete: Bool, node: String?) {
        self.version = version
        self.size = size
        self.chunkSize = chunkSize
        self.have = have
        self.claims = claims
        self.complete = complete
        self.node = node
    }

    /// Decodes a peer's answer body; nil when it is not a valid availability JSON object.
    public static func decode(_ body: [UInt8]) -> PeerAvailability? {
        try? JSONDecoder().decode(PeerAvailability.self, from: Data(body))
    }

    /// The chunk sets this answer gives for a blob laid out as `layout` (the fetcher's own layout, from the origin
    /// or a trusted manifest): nil when the peer's blob has another size or chunk size, or a bitmap is malformed.
    public func chunkSets(for layout: ChunkLayout) -> (have: ChunkSet, claims: ChunkSet)? {
        guard size == layout.size, chunkSize == layout.chunkSize,
              let h = try? ChunkSet(hex: have, capacity: layout.count),
              let c = try? ChunkSet(hex: claims, capacity: layout.count) else { return nil }
        return (h, c)
    }
}
