import Testing
@testable import ModelCacheCore

/// The socket's receive low-water mark for a response body: a few milliseconds of bytes at the body's rate, never
/// more than the body still has to send (less a margin), 1 between bodies and for bodies of unknown length.
@Suite struct ReadBatchingTests {
    /// Feeds a body of `length` bytes in pieces of `piece` bytes, one every `gap`; returns the policy after each piece.
    static func feed(_ p: inout ReadBatching, length: Int64, piece: Int, gap: Duration, from start: Duration = .zero) -> [ReadBatching] {
        var out: [ReadBatching] = []
        var sent: Int64 = 0
        var now = start
        while sent < length {
            let n = Int(min(Int64(piece), length - sent))
            now += gap
            _ = p.received(n, now: now)
            sent += Int64(n)
            out.append(p)
        }
        return out
    }

    @Test func aFastBodyWaitsForAFullReadBufferUntilNearItsEnd() {
        var p = ReadBatching()
        #expect(p.requestSent() == nil)  // already 1
        #expect(p.responseStarts(bodyLength: 64 << 20, now: .zero) == nil)
        // 64 KiB every 0.1 ms: 655 MB/s, 20 ms of it is far over the cap.
        let states = Self.feed(&p, length: 64 << 20, piece: 64 << 10, gap: .microseconds(100))
        #expect(states.contains { $0.mark == p.settings.cap })
        #expect(p.mark == 1)  // back to 1 before the last bytes
        #expect(p.remaining == 0)
        #expect(p.responseEnds() == nil)
    }

    @Test func theMarkFollowsTheRate() {
        var p = ReadBatching()
        _ = p.responseStarts(bodyLength: 1 << 30, now: .zero)
        // 16 KiB every 4 ms: 4 MB/s; 20 ms of it is 80 KiB.
        let states = Self.feed(&p, length: 8 << 20, piece: 16 << 10, gap: .milliseconds(4))
        let marks = Set(states.map(\.mark))
        #expect(marks.contains { $0 >= 70_000 && $0 <= 90_000 }, "marks \(marks)")
        #expect(!marks.contains { $0 > 100_000 })
    }

    @Test func aSlowBodyKeepsWakingForEveryByte() {
        var p = ReadBatching()
        _ = p.responseStarts(bodyLength: 1 << 30, now: .zero)
        // 64 KiB every 100 ms: 655 KB/s, 20 ms of it is 13 KB, under the smallest mark worth a system call.
        let states = Self.feed(&p, length: 4 << 20, piece: 64 << 10, gap: .milliseconds(100))
        #expect(states.allSatisfy { $0.mark == 1 })
    }

    @Test func aBodyOfUnknownLengthIsNeverWaitedFor() {
        var p = ReadBatching()
        _ = p.responseStarts(bodyLength: nil, now: .zero)
        let states = Self.feed(&p, length: 16 << 20, piece: 64 << 10, gap: .microseconds(100))
        #expect(states.allSatisfy { $0.mark == 1 })
    }

    /// Whatever the pieces and their pace, the mark never asks for more than the body still has to send, less the
    /// margin: the last bytes are never held back. (Checked in a loop, one expectation per case: thousands of
    /// `#expect`s would keep a thread of the shared pool busy for seconds in the full suite.)
    @Test(arguments: 0..<12) func theMarkNeverExceedsWhatIsStillToCome(seed: UInt64) {
        var g = SplitMix64(seed: seed &* 7919 &+ 1)
        var p = ReadBatching()
        var now = Duration.zero
        var violations: [String] = []
        var largest = 1
        for response in 0..<3 {  // three responses on one connection
            _ = p.requestSent()
            if p.mark != 1 { violations.append("response \(response): mark \(p.mark) after the request") }
            let length = Int64.random(in: 0...(24 << 20), using: &g)
            _ = p.responseStarts(bodyLength: length, now: now)
            var left = length
            while left > 0 {
                let n = Int(min(left, Int64.random(in: 1...(300 << 10), using: &g)))
                now += .microseconds(Int64.random(in: 1...30_000, using: &g))
                _ = p.received(n, now: now)
                left -= Int64(n)
                largest = max(largest, p.mark)
                if p.remaining != left || !(p.mark == 1 || Int64(p.mark) <= left - p.settings.margin) || p.mark > p.settings.cap {
                    violations.append("response \(response): mark \(p.mark), remaining \(String(describing: p.remaining)), \(left) to come")
                }
            }
            _ = p.responseEnds()
            if p.mark != 1 { violations.append("response \(response): mark \(p.mark) after its end") }
        }
        #expect(violations.isEmpty, "\(violations.prefix(5))")
        #expect(largest > 1)  // the bodies were batched at all
    }

    @Test func aNewRequestOrAFailedBodyResetsTheMark() {
        var p = ReadBatching()
        _ = p.responseStarts(bodyLength: 1 << 30, now: .zero)
        _ = Self.feed(&p, length: 32 << 20, piece: 64 << 10, gap: .microseconds(100))
        #expect(p.mark == p.settings.cap)
        #expect(p.responseEnds() == 1)
        _ = Self.feed(&p, length: 1 << 20, piece: 64 << 10, gap: .microseconds(100), from: .seconds(1))
        #expect(p.mark == 1)  // bytes outside a body (none are expected) change nothing
        _ = p.responseStarts(bodyLength: 1 << 30, now: .seconds(2))
        _ = Self.feed(&p, length: 32 << 20, piece: 64 << 10, gap: .microseconds(100), from: .seconds(2))
        #expect(p.requestSent() == 1)
    }

    @Test func aMarkThatCouldNotBeSetTurnsBatchingOff() {
        var p = ReadBatching()
        _ = p.responseStarts(bodyLength: 1 << 30, now: .zero)
        _ = Self.feed(&p, length: 32 << 20, piece: 64 << 10, gap: .microseconds(100))
        p.failed()
        #expect(p.mark == 1)
        let states = Self.feed(&p, length: 32 << 20, piece: 64 << 10, gap: .microseconds(100), from: .seconds(1))
        #expect(states.allSatisfy { $0.mark == 1 })
        _ = p.responseStarts(bodyLength: 1 << 30, now: .seconds(2))
        #expect(Self.feed(&p, length: 32 << 20, piece: 64 << 10, gap: .microseconds(100), from: .seconds(2)).allSatisfy { $0.mark == 1 })
    }

    @Test func smallChangesAreNotWorthASystemCall() {
        var p = ReadBatching()
        _ = p.responseStarts(bodyLength: 1 << 30, now: .zero)
        var changes = 0
        var now = Duration.zero
        // A rate that wobbles by ±10% around 4 MB/s: one mark, not one per sample.
        for i in 0..<2000 {
            now += .milliseconds(i % 2 == 0 ? 4 : 5)  // 16 KiB per 4 or 5 ms
            if p.received(16 << 10, now: now) != nil { changes += 1 }
        }
        #expect(changes >= 1 && changes <= 3, "\(changes) changes")
    }
}
