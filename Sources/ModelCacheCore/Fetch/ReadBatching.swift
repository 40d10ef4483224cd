/// How many bytes a connection's socket gathers before it wakes its reader (the socket's receive low-water mark,
/// `SO_RCVLOWAT`), for one HTTP response body at a time (issue 12: wake-ups).
///
/// On a link slower than loopback every socket read wakes an event loop and then the task that hashes and writes
/// the bytes, for whatever few kilobytes arrived since the last read. Waiting for more costs nothing in throughput
/// (the kernel keeps receiving meanwhile) as long as the wait is short, so the mark is the bytes that arrive in
/// `batchTime` at the body's current rate, at most `cap`. Never more than the body still has to send minus `margin`:
/// a mark above what is still to come would hold the last bytes until the read timeout. The margin covers what the
/// layers below may already hold of the body (a TLS record read in part). Between responses, for a body of unknown
/// length (chunked, or up to the connection's close) and after a failed setting, the mark is 1: every byte wakes the
/// reader, as without this policy. A stalled source wakes nobody either way; the reader's read timeout still ends
/// the wait, and the kernel wakes it at once on the peer's close or reset.
///
/// A plain value: the channel handler feeds it events and applies the marks it returns (nil: leave it as it is).
public struct ReadBatching: Sendable, Equatable {
    public struct Settings: Sendable, Equatable {
        /// Most bytes waited for: one full read buffer.
        public var cap = 256 << 10
        /// Bytes at a body's end that are never waited for.
        public var margin: Int64 = 32 << 10
        /// How long the bytes of one read take to arrive, at the measured rate.
        public var batchTime: Duration = .milliseconds(20)
        /// The rate is measured over at least this long (and at least `minimumSample` bytes).
        public var sampleTime: Duration = .milliseconds(20)
        public var minimumSample = 64 << 10
        /// A mark below this is not worth a system call: 1 instead.
        public var smallest = 16 << 10
        public init() {}
    }

    public let settings: Settings
    /// The mark last returned (1 until a body's rate is known).
    public private(set) var mark = 1
    /// Body bytes still to come in the current response; nil between responses or when unknown.
    public private(set) var remaining: Int64?
    private var sampleStart: Duration?
    private var sampleBytes: Int64 = 0
    /// Bytes per second over the last full sample; 0 until one.
    public private(set) var rate: Double = 0
    /// Set after a mark could not be applied: from then on the mark stays 1.
    public private(set) var disabled = false

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// A request goes out: whatever comes next is a new response's head.
    public mutating func requestSent() -> Int? {
        remaining = nil
        return set(1)
    }

    /// A response head: `bodyLength` is its Content-Length when it has a body of known length (nil for a HEAD's
    /// answer, 1xx, 204, 304, chunked bodies, or a length that does not parse).
    public mutating func responseStarts(bodyLength: Int64?, now: Duration) -> Int? {
        remaining = bodyLength.map { max(0, $0) }
        sampleStart = now
        sampleBytes = 0
        rate = 0
        return set(1)
    }

    /// `count` body bytes arrived at `now`.
    public mutating func received(_ count: Int, now: Duration) -> Int? {
        guard let left = remaining else { return nil }
        let n = Int64(max(0, count))
        remaining = max(0, left - n)
        sampleBytes += n
        if let start = sampleStart, now - start >= settings.sampleTime, sampleBytes >= Int64(settings.minimumSample) {
            let seconds = (now - start).inSeconds
            if seconds > 0 { rate = Double(sampleBytes) / seconds }
            sampleStart = now
            sampleBytes = 0
        }
        return set(target())
    }

    /// The response ended (or failed): back to 1 until the next body.
    public mutating func responseEnds() -> Int? {
        remaining = nil
        return set(1)
    }

    /// A mark could not be applied: stay at 1 (the caller tries to set 1 once more).
    public mutating func failed() {
        disabled = true
        mark = 1
    }

    /// The mark for the bytes still to come at the current rate.
    func target() -> Int {
        guard !disabled, let left = remaining, rate > 0 else { return 1 }
        let byRate = rate * settings.batchTime.inSeconds
        let room = Double(left - settings.margin)
        let want = min(Double(settings.cap), byRate, room)
        guard want.isFinite, want >= Double(settings.smallest) else { return 1 }
        return Int(want)
    }

    /// Returns `new` when it differs enough from the mark in force to be worth a system call, or when the mark in force
    /// may no longer wait that long: more than the body still has to send, less the margin.
    private mutating func set(_ new: Int) -> Int? {
        let new = disabled ? 1 : max(1, new)
        if new == mark { return nil }
        let mustDrop = mark > 1 && Int64(mark) > (remaining ?? 0) - settings.margin
        if !mustDrop, new != 1, mark != 1, abs(new - mark) * 4 < mark { return nil }
        mark = new
        return new
    }
}
