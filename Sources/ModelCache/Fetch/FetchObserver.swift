/// Where a fetch's bytes came from, for counting: the origin, a peer that holds the blob, or a peer of the swarm
/// (downloading the same blob at the same time, protocol §11).
public enum ByteSource: Sendable, Hashable {
    case origin
    case peer(String)
    case swarm(String)
}

/// How a fetch ended, for counting.
public enum FetchOutcome: Sendable, Equatable {
    /// Answered from the cache: no byte moved.
    case hit
    /// Downloaded and committed, in this time.
    case downloaded(Duration)
    /// Not in the cache, and the download failed.
    case failed
}

/// What a `FetchEngine` reports while it works (the node's metrics listen). The engine knows nothing more of its
/// listener; every call is cheap and never throws. Received bytes are reported as they arrive (one call per body
/// part), failed attempts included.
public protocol FetchObserver: Sendable {
    func received(_ bytes: Int, from source: ByteSource)
    func fetchEnded(_ outcome: FetchOutcome)
    /// Blobs evicted (least recently used) to make room for a download, and their bytes.
    func evicted(blobs: Int, bytes: Int64)
}
