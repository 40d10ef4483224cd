/// A token bucket for byte rates: pure state, time passed in by the caller.
/// `take(n, now:)` spends `n` bytes and answers how long the caller must wait before sending them, so that over any
/// window the rate stays at `rate` bytes per second with bursts of at most `burst` bytes.
public struct TokenBucket: Sendable, Equatable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var last: Duration

    public init(bytesPerSecond: Int64, burst: Int64? = nil, now: Duration = .zero) {
        self.rate = Double(max(1, bytesPerSecond))
        self.burst = Double(burst ?? max(64 * 1024, bytesPerSecond / 10))
        self.tokens = self.burst
        self.last = now
    }

    /// Spends `n` bytes (the balance may go negative); returns the wait before they may go out.
    public mutating func take(_ n: Int, now: Duration) -> Duration {
        let elapsed = Double((now - last).components.seconds) + Double((now - last).components.attoseconds) / 1e18
        if elapsed > 0 {
            tokens = min(burst, tokens + elapsed * rate)
            last = now
        }
        tokens -= Double(n)
        guard tokens < 0 else { return .zero }
        return .nanoseconds(Int64(-tokens / rate * 1e9))
    }
}
