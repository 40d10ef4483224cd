import ModelCacheCore
import Synchronization

/// A byte-rate limit shared by every transfer of one kind on a node (all jobs' origin downloads, or all uploads to
/// peers): `serve --max-origin-rate`, `--max-upload-rate`.
public final class RateLimiter: Sendable {
    private let bucket: Mutex<TokenBucket>
    private let start = ContinuousClock.now
    private let taken = Atomic<Int64>(0)

    public init(bytesPerSecond: Int64) {
        bucket = Mutex(TokenBucket(bytesPerSecond: bytesPerSecond))
    }

    /// Waits until `n` more bytes may pass.
    public func consume(_ n: Int) async throws {
        taken.add(Int64(n), ordering: .relaxed)
        let wait = bucket.withLock { $0.take(n, now: ContinuousClock.now - start) }
        if wait > .zero { try await Task.sleep(for: wait) }
    }

    /// The bytes passed through this limit so far (each counted before its wait).
    public var consumed: Int64 { taken.load(ordering: .relaxed) }
}
