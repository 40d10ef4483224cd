/// When to try again, how long to wait first, and when to give up: one pure policy for the engine's probe and
/// single-stream retries, the chunk scheduler's back-off and the node's jobs.
///
/// Rules:
/// - offline (the origin or every peer unreachable): pause and try again later; a pause is not counted;
/// - a protocol violation (redirect loop, impossible port, a length that lies, a wrong Content-Range): give up at once;
/// - a final failure (404, a changed file, a full disk, a digest mismatch): give up at once;
/// - a transient failure (5xx, 408, 429, a dropped connection): try again after a back-off, until the same failure
///   happened `sameFailureLimit` times in a row, or `maxAttempts` attempts failed without progress.
public struct RetryPolicy: Sendable, Hashable {
    /// Failed attempts without progress after which any failure gives up.
    public var maxAttempts: Int
    /// The same failure this many times in a row gives up with that failure as the reason.
    public var sameFailureLimit: Int
    /// Back-off before retry 1, doubled for each retry, capped at `maxDelay`.
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// 0...1: the fraction of a delay that is randomised away (0: exact delays), so retries of many clients spread.
    public var jitter: Double

    public init(maxAttempts: Int = 10, sameFailureLimit: Int = 5, baseDelay: Duration = .milliseconds(200),
                maxDelay: Duration = .seconds(10), jitter: Double = 0) {
        self.maxAttempts = max(1, maxAttempts)
        self.sameFailureLimit = max(1, sameFailureLimit)
        self.baseDelay = max(.zero, baseDelay)
        self.maxDelay = max(self.baseDelay, maxDelay)
        self.jitter = jitter.isFinite ? min(max(jitter, 0), 1) : 0
    }

    /// How a failure is treated.
    public enum Kind: String, Sendable, Hashable {
        case offline, transient, final
        case protocolViolation = "protocol-violation"
    }

    public static func kind(of error: ModelCacheError) -> Kind {
        switch error {
        case .bodyCut:
            return .transient  // the server was reached: counted, so a body that always ends early gives up
        case .originUnreachable, .peerUnreachable, .noSource, .peerRejected:
            return .offline
        case .originStatus(_, let status, _):
            return status >= 500 || status == 408 || status == 429 ? .transient : .final
        case .protocolViolation, .invalidManifest:
            return .protocolViolation
        case .malformedURL, .malformedDigest, .originChanged, .digestMismatch, .sizeMismatch, .diskFull, .io,
             .notInCache, .aborted, .quotaExceeded, .invalidArgument, .portInUse:
            return .final
        }
    }

    /// Errors that are not a `ModelCacheError` (a timeout or reset inside the HTTP stack) are transient.
    public static func kind(of error: any Error) -> Kind {
        (error as? ModelCacheError).map { kind(of: $0) } ?? .transient
    }

    /// Whether another attempt may help (offline or transient), as opposed to giving up at once.
    public static func isRetryable(_ error: any Error) -> Bool {
        let k = kind(of: error)
        return k == .offline || k == .transient
    }

    /// A body that broke off after the server answered (`bodyCut`: dropped, short, or stalled).
    public static func isBodyCut(_ error: ModelCacheError) -> Bool {
        if case .bodyCut = error { return true }
        return false
    }

    /// A body that went silent for a whole read timeout, as opposed to one whose connection dropped.
    public static func isStall(_ error: ModelCacheError) -> Bool {
        if case .bodyCut(_, _, stalled: true) = error { return true }
        return false
    }

    /// Whether a chunk whose body broke off after some bytes continues from the byte where it stopped, from the same
    /// source (true), or goes back to the scheduler (false). A dropped connection resumes in place: the source was
    /// sending. A stall resumes only from the origin: a peer that said nothing for a whole read timeout gives its
    /// chunk back, so that another source takes it now, instead of the chunk waiting out the peer's next stall (a
    /// peer that sends a few bytes per timeout held a chunk until its whole-chunk deadline).
    public static func resumesInPlace(after error: any Error, fromPeer: Bool) -> Bool {
        guard isRetryable(error) else { return false }
        guard fromPeer, let e = error as? ModelCacheError else { return true }
        return !isStall(e)
    }

    /// What makes two failures "the same": the stable code, plus the status for an origin's answer.
    public static func key(of error: ModelCacheError) -> String {
        if case .originStatus(_, let status, _) = error { return "\(error.code) \(status)" }
        if isBodyCut(error) { return "\(error.code) body-cut" }
        return error.code
    }

    /// The back-off before retry number `attempt` (1-based): base, 2×base, … capped at `maxDelay`, minus up to
    /// `jitter` of it. `sample` is a number in 0..<1 (random in production, fixed in tests).
    public func delay(attempt: Int, sample: Double = 0) -> Duration {
        var d = baseDelay
        var i = 1
        while i < attempt && i < 64 && d < maxDelay {
            d = d * 2
            i += 1
        }
        d = min(d, maxDelay)
        let s = sample.isFinite ? min(max(sample, 0), 1) : 0
        return d - d * (jitter * s)
    }

    /// A retry loop's memory, kept across attempts (and, for a job, across node restarts).
    public struct History: Codable, Sendable, Hashable {
        /// Attempts started and not yet known to have made progress (an attempt that ended in a crash stays counted).
        public var attempts: Int = 0
        /// Failed attempts without progress (offline pauses excluded).
        public var failures: Int = 0
        /// Consecutive failures with the same key, and that key.
        public var sameFailures: Int = 0
        public var lastFailure: String?
        /// Consecutive offline pauses (for the pause's back-off).
        public var pauses: Int = 0
        public init() {}
    }

    public enum Decision: Equatable, Sendable {
        /// Try again after this delay.
        case retry(after: Duration)
        /// Offline: wait this long (or until the network changes), then try again; not counted as a failure.
        case pause(after: Duration)
        /// Stop, for this reason.
        case giveUp(String)
    }

    /// Before an attempt: gives up when earlier attempts (counted even if the process died during them) reached
    /// `maxAttempts` without progress; otherwise counts this attempt.
    public func start(_ h: inout History) -> Decision? {
        let unfinished = max(0, h.attempts - h.failures)
        if unfinished >= sameFailureLimit {
            return .giveUp("the process stopped during each of the last \(unfinished) attempts, without progress")
        }
        if h.attempts >= maxAttempts {
            return .giveUp("\(h.attempts) attempts ended without progress\(h.lastFailure.map { " (the last: \($0))" } ?? "")")
        }
        h.attempts += 1
        return nil
    }

    /// An attempt was cancelled (an abort, a clean shutdown): it neither failed nor crashed.
    public func cancelled(_ h: inout History) { h.attempts = max(0, h.attempts - 1) }

    /// Bytes moved: the retry history starts over.
    public func progressed(_ h: inout History) { h = History() }

    /// After a failed attempt: retry, pause or give up. `sample` as in `delay(attempt:sample:)`.
    public func decide(after error: ModelCacheError, _ h: inout History, sample: Double = 0) -> Decision {
        switch Self.kind(of: error) {
        case .final, .protocolViolation:
            return .giveUp(error.description)
        case .offline:
            h.attempts = max(0, h.attempts - 1)  // an offline attempt is not counted
            h.pauses += 1
            return .pause(after: delay(attempt: h.pauses, sample: sample))
        case .transient:
            h.pauses = 0
            h.failures += 1
            let key = Self.key(of: error)
            h.sameFailures = h.lastFailure == key ? h.sameFailures + 1 : 1
            h.lastFailure = key
            if h.sameFailures >= sameFailureLimit {
                return .giveUp("failed \(h.sameFailures) times in a row: \(error.description)")
            }
            if h.failures >= maxAttempts {
                return .giveUp("\(h.failures) attempts failed: \(error.description)")
            }
            return .retry(after: delay(attempt: h.failures, sample: sample))
        }
    }

    /// For a simple loop (the engine's probe): whether attempt number `attempt` (1-based) that failed with `error`
    /// may be followed by another, and after which delay. Offline and transient failures are retried up to
    /// `maxAttempts` attempts in all; protocol violations and final failures are not.
    public func retryDelay(after error: any Error, attempt: Int, sample: Double = 0) -> Duration? {
        guard Self.isRetryable(error), attempt < maxAttempts else { return nil }
        return delay(attempt: attempt, sample: sample)
    }
}
