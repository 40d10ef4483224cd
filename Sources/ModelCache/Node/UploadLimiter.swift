import Synchronization

/// Caps concurrent uploads to peers; a request over the cap gets 503 + Retry-After.
public final class UploadLimiter: Sendable {
    public let limit: Int
    private let active = Mutex(0)

    public init(limit: Int) { self.limit = limit }

    public func tryAcquire() -> Bool {
        active.withLock { n in
            guard n < limit else { return false }
            n += 1
            return true
        }
    }

    public func release() { active.withLock { $0 -= 1 } }
    public var current: Int { active.withLock { $0 } }
}
