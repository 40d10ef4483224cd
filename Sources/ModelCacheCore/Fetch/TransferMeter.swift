/// The rate, ETA and bar position of one transfer, from the byte counts it reports: pure, the clock is the caller's
/// (seconds since any fixed instant).
///
/// - The first count is the baseline: bytes an earlier run had already verified (a resume) are not bytes of this
///   run, so they never inflate the rate.
/// - The rate is taken over a moving window (the last `window` seconds), so it follows the transfer as it speeds up
///   or stalls, and it is never negative.
/// - The position never goes backwards: a chunk whose bytes were discarded (a failed source) is not "un-downloaded"
///   on screen; the bar waits until the new bytes pass the old mark.
public struct TransferMeter: Sendable, Equatable {
    public struct Sample: Sendable, Equatable {
        public var at: Double
        public var bytes: Int64
    }

    /// Seconds over which the rate is measured.
    public let window: Double
    /// The total size when known.
    public private(set) var total: Int64?
    /// Highest count seen (what the bar shows).
    public private(set) var position: Int64 = 0
    /// The first count and when it came; nil before the first count.
    public private(set) var first: Sample?
    /// When the position last moved forward (or the first count came).
    public private(set) var lastAdvance: Double?
    private var samples: [Sample] = []

    public init(window: Double = 5) {
        self.window = window > 0 && window.isFinite ? window : 5
    }

    /// Records the transfer's count (bytes of the file present, resumed ones included) at time `at`.
    public mutating func record(bytes: Int64, total: Int64?, at: Double) {
        guard at.isFinite else { return }
        if let total, total > 0 { self.total = total }
        let bytes = max(0, bytes)
        if first == nil { first = Sample(at: at, bytes: bytes) }
        if lastAdvance == nil || bytes > position { lastAdvance = at }
        position = max(position, bytes)
        if let last = samples.last, at < last.at { return }  // a clock that went back: keep the earlier samples
        samples.append(Sample(at: at, bytes: position))
        // Keep one sample at or before the window's start as the anchor of the rate.
        while samples.count > 2, samples[1].at <= at - window { samples.removeFirst() }
        if samples.count > 512 { samples.removeFirst(samples.count - 512) }  // bounded, whatever the caller's rhythm
    }

    /// Bytes moved by this run (resumed bytes excluded), never negative.
    public var movedThisRun: Int64 { max(0, position - (first?.bytes ?? 0)) }

    /// Bytes per second over the last `window` seconds, as of `now`; nil until the transfer has run half a second.
    /// A transfer that stalls for a whole window reads 0.
    public func rate(now: Double) -> Double? {
        guard let first, let last = samples.last, now.isFinite, now - first.at >= 0.5 else { return nil }
        let start = now - window
        // The anchor: the newest sample at or before the window's start, else the oldest one kept.
        let anchor = samples.last(where: { $0.at <= start }) ?? samples[0]
        let span = now - anchor.at
        guard span > 0 else { return nil }
        return Double(max(0, last.bytes - anchor.bytes)) / span
    }

    /// Mean bytes per second of this run, from its first count to `now`.
    public func averageRate(now: Double) -> Double? {
        guard let first, now - first.at > 0 else { return nil }
        return Double(movedThisRun) / (now - first.at)
    }

    /// Seconds since the position last moved, when that is at least `threshold` and the transfer is not complete.
    public func stalled(now: Double, threshold: Double = 3) -> Double? {
        guard let lastAdvance, now - lastAdvance >= threshold, fraction.map({ $0 < 1 }) ?? true else { return nil }
        return now - lastAdvance
    }

    /// Seconds left at the current rate; nil when the total or the rate is unknown or zero.
    public func eta(now: Double) -> Double? {
        guard let total, let r = rate(now: now), r > 0 else { return nil }
        return Double(max(0, total - position)) / r
    }

    /// The bar's fill, 0...1; nil when the total is unknown.
    public var fraction: Double? {
        guard let total, total > 0 else { return nil }
        return min(1, max(0, Double(position) / Double(total)))
    }
}
