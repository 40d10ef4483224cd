import Foundation
import ModelCacheCore
import Synchronization

/// What to fetch and how.
public struct FetchRequest: Sendable {
    public var url: String
    /// The trusted whole-blob digest, when the user knows it (`--sha256`).
    public var expected: BlobDigest?
    /// Parallel connections to the origin.
    public var connections: Int
    public var chunkSize: Int64
    public var useOrigin: Bool
    /// Extra headers for the origin (a Hugging Face token): sent to the origin's own host only, never to the host
    /// a redirect points to, never to peers.
    public var originHeaders: [(String, String)] = []
    /// The download and its blob stay off the catalogue, the swarm and the peer API (a gated or private file).
    public var isPrivate = false

    public init(url: String, expected: BlobDigest? = nil, connections: Int = 4,
                chunkSize: Int64 = ChunkLayout.defaultChunkSize, useOrigin: Bool = true) {
        self.url = url
        self.expected = expected
        self.connections = connections
        self.chunkSize = chunkSize
        self.useOrigin = useOrigin
    }
}

/// The outcome of a fetch, as `modelcache fetch --json` prints it.
public struct FetchResult: Sendable, Codable, Equatable {
    public var path: String
    public var sha256: BlobDigest
    public var size: Int64
    /// Bytes received from each source ("origin", "peer NAME"), failed attempts included.
    public var sources: [String: Int64]
    public var seconds: Double
    public var cached: Bool
    /// Bytes an earlier, interrupted run had already verified.
    public var resumedBytes: Int64
    /// Where the URL's mapping to this blob came from (protocol §8); `user` for a `--sha256` nobody else vouched for.
    public var digestSource: URLEvidence?

    public init(path: String, sha256: BlobDigest, size: Int64, sources: [String: Int64], seconds: Double,
                cached: Bool, resumedBytes: Int64, digestSource: URLEvidence? = nil) {
        self.digestSource = digestSource
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.sources = sources
        self.seconds = seconds
        self.cached = cached
        self.resumedBytes = resumedBytes
    }
}

extension FetchResult {
    /// A cache hit: no bytes from anywhere. With `url`: the evidence of that URL's mapping (`user` when it has none).
    public static func hit(_ r: BlobRecord, url: String? = nil, seconds: Double = 0) -> FetchResult {
        FetchResult(path: r.path, sha256: r.sha256, size: r.size, sources: [:], seconds: seconds, cached: true, resumedBytes: 0,
                    digestSource: url.map { r.urlEvidence[$0] ?? .user } ?? r.digestSource)
    }
}

public struct FetchProgress: Sendable, Equatable {
    public var downloaded: Int64
    public var total: Int64?
    /// Bytes received so far from each source (`"origin"`, `"peer NAME"`), as in `FetchResult.sources`.
    public var sources: [String: Int64] = [:]
}

/// Byte counters shared by the workers of one fetch (hot path: one atomic add per body part).
final class TransferCounters: Sendable {
    let downloaded = Atomic<Int64>(0)
    private let bySource = Mutex<[String: Int64]>([:])
    /// Told of every byte received, with its kind of source.
    private let observer: (any FetchObserver)?
    /// The peers that take part as swarm members (downloading the blob too), not as holders of it.
    private let swarm: Set<String>

    init(observer: (any FetchObserver)? = nil, swarm: Set<String> = []) {
        self.observer = observer
        self.swarm = swarm
    }

    func received(_ n: Int, from source: SourceID) {
        downloaded.add(Int64(n), ordering: .relaxed)
        bySource.withLock { $0[source.description, default: 0] += Int64(n) }
        if let observer {
            observer.received(n, from: source.kind == .origin ? .origin : swarm.contains(source.name) ? .swarm(source.name) : .peer(source.name))
        }
    }

    /// Bytes of a failed chunk no longer count as downloaded (they still count as received from the source).
    func discarded(_ n: Int64) {
        downloaded.subtract(n, ordering: .relaxed)
    }

    var sources: [String: Int64] { bySource.withLock { $0 } }
}
