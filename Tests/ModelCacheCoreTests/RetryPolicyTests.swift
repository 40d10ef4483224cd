import Testing
import ModelCacheCore

/// The one retry policy: back-off with cap and jitter, same failure N times gives up, protocol violations give up at
/// once, offline pauses are not counted, attempts that never reported (a crash) end the loop.
struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 10, sameFailureLimit: 5, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
    let status500 = ModelCacheError.originStatus(url: "http://o/f", status: 500, reason: "Internal Server Error")
    let unreachable = ModelCacheError.originUnreachable(url: "http://o/f", detail: "connect timeout")

    @Test func backoffDoublesUpToTheCap() {
        #expect((1...6).map { policy.delay(attempt: $0) } == [.milliseconds(100), .milliseconds(200), .milliseconds(400),
                                                              .milliseconds(800), .seconds(1), .seconds(1)])
        #expect(policy.delay(attempt: 0) == .milliseconds(100))
        #expect(policy.delay(attempt: Int.max) == .seconds(1))
    }

    @Test func jitterTakesAwayAtMostItsFraction() {
        var p = policy
        p.jitter = 0.5
        #expect(p.delay(attempt: 2, sample: 0) == .milliseconds(200))
        #expect(p.delay(attempt: 2, sample: 1) == .milliseconds(100))
        #expect(p.delay(attempt: 2, sample: 0.5) == .milliseconds(150))
        #expect(p.delay(attempt: 2, sample: .nan) == .milliseconds(200))
        #expect(RetryPolicy(jitter: 7).jitter == 1 && RetryPolicy(jitter: -1).jitter == 0 && RetryPolicy(jitter: .infinity).jitter == 0)
    }

    @Test func theSameFailureFiveTimesGivesUpWithThatReason() {
        var h = RetryPolicy.History()
        var decisions: [RetryPolicy.Decision] = []
        for _ in 0..<5 {
            #expect(policy.start(&h) == nil)
            decisions.append(policy.decide(after: status500, &h))
        }
        #expect(decisions.dropLast().allSatisfy { if case .retry = $0 { true } else { false } })
        guard case .giveUp(let why) = decisions.last else { Issue.record("did not give up"); return }
        #expect(why.contains("5 times") && why.contains("500"))
    }

    @Test func differentFailuresStillEndAfterMaxAttempts() {
        var h = RetryPolicy.History()
        let other = ModelCacheError.originStatus(url: "u", status: 503, reason: "Unavailable")
        var last: RetryPolicy.Decision = .retry(after: .zero)
        var n = 0
        while case .retry = last, n < 100 {
            _ = policy.start(&h)
            last = policy.decide(after: n % 2 == 0 ? status500 : other, &h)
            n += 1
        }
        #expect(n == 10)
        if case .giveUp = last {} else { Issue.record("expected give-up, got \(last)") }
    }

    @Test func protocolViolationsAndFinalFailuresGiveUpAtOnce() {
        for e in [ModelCacheError.protocolViolation("more than 10 redirects"), .originStatus(url: "u", status: 404, reason: "Not Found"),
                  .digestMismatch(expected: BlobDigest.of([1]), got: BlobDigest.of([2])), .malformedURL("http://h:99999/")] {
            var h = RetryPolicy.History()
            _ = policy.start(&h)
            #expect(policy.decide(after: e, &h) == .giveUp(e.description))
            #expect(!RetryPolicy.isRetryable(e))
            #expect(policy.retryDelay(after: e, attempt: 1) == nil)
        }
        #expect(RetryPolicy.kind(of: ModelCacheError.protocolViolation("x")) == .protocolViolation)
    }

    @Test func offlinePausesAreNotCountedAndBackOff() {
        var h = RetryPolicy.History()
        var waits: [Duration] = []
        for _ in 0..<50 {
            #expect(policy.start(&h) == nil)
            guard case .pause(let d) = policy.decide(after: unreachable, &h) else { Issue.record("offline must pause"); return }
            waits.append(d)
        }
        #expect(h.attempts == 0 && h.failures == 0)
        #expect(waits.prefix(3) == [.milliseconds(100), .milliseconds(200), .milliseconds(400)] && waits.last == .seconds(1))
        // A transient failure after pauses starts counting from one.
        _ = policy.start(&h)
        #expect(policy.decide(after: status500, &h) == .retry(after: .milliseconds(100)))
    }

    @Test func aBodyThatAlwaysEndsEarlyIsCountedNotAPause() {
        let cut = ModelCacheError.bodyCut(url: "u", detail: "ended after 10 of 64 bytes", stalled: false)
        #expect(RetryPolicy.kind(of: cut) == .transient && RetryPolicy.kind(of: unreachable) == .offline)
        var h = RetryPolicy.History()
        var last: RetryPolicy.Decision = .retry(after: .zero)
        for _ in 0..<5 { _ = policy.start(&h); last = policy.decide(after: cut, &h) }
        guard case .giveUp(let why) = last else { Issue.record("expected give-up, got \(last)"); return }
        #expect(why.contains("the download of u broke off (ended after 10 of 64 bytes)"))
        #expect(cut.code == "fetch-error" && cut.exitCode == 4)
    }

    /// A peer that gives no answer is named as a peer (not "the origin"), pauses like any unreachable source, and
    /// keeps the wire's error code.
    @Test func anUnreachablePeerIsNamedAsAPeer() {
        let peer = ModelCacheError.peerUnreachable(peer: "10.77.0.2:7070", detail: "connection refused")
        #expect(RetryPolicy.kind(of: peer) == .offline && !RetryPolicy.isBodyCut(peer))
        #expect(peer.code == "fetch-error" && peer.exitCode == 4)
        #expect(peer.description.hasPrefix("cannot reach peer 10.77.0.2:7070 (connection refused)"))
        #expect(!peer.description.contains("origin"))
    }

    @Test func attemptsThatNeverReportedEndTheLoop() {
        // A process that dies during each try never reports a failure: the persisted count still ends it.
        var h = RetryPolicy.History()
        for _ in 0..<5 { #expect(policy.start(&h) == nil) }
        guard case .giveUp(let why)? = policy.start(&h) else { Issue.record("a crash loop must end"); return }
        #expect(why.contains("5 attempts"))
    }

    @Test func progressAndCancellationForgetTheHistory() {
        var h = RetryPolicy.History()
        for _ in 0..<4 { _ = policy.start(&h); _ = policy.decide(after: status500, &h) }
        policy.progressed(&h)
        #expect(h == RetryPolicy.History())
        for _ in 0..<20 { _ = policy.start(&h); policy.cancelled(&h) }
        #expect(policy.start(&h) == nil)
    }

    @Test func retryDelayBoundsASimpleLoop() {
        #expect(policy.retryDelay(after: unreachable, attempt: 1) == .milliseconds(100))
        #expect(policy.retryDelay(after: status500, attempt: 9) == .seconds(1))
        #expect(policy.retryDelay(after: status500, attempt: 10) == nil)
        struct Reset: Error {}
        #expect(policy.retryDelay(after: Reset(), attempt: 1) != nil)
    }
    /// A dropped body resumes in place from any source; a stalled one only from the origin (a peer gives it back).
    @Test func aStallResumesInPlaceOnlyFromTheOrigin() {
        let stall = ModelCacheError.bodyCut(url: "u", detail: "stalled after 5000 bytes: no byte within the read timeout", stalled: true)
        let drop = ModelCacheError.bodyCut(url: "u", detail: "interrupted after 5000 bytes: connection reset", stalled: false)
        #expect(RetryPolicy.isStall(stall) && !RetryPolicy.isStall(drop))
        #expect(RetryPolicy.isBodyCut(stall) && RetryPolicy.kind(of: stall) == .transient)
        #expect(RetryPolicy.resumesInPlace(after: stall, fromPeer: false))
        #expect(!RetryPolicy.resumesInPlace(after: stall, fromPeer: true))
        #expect(RetryPolicy.resumesInPlace(after: drop, fromPeer: true) && RetryPolicy.resumesInPlace(after: drop, fromPeer: false))
        struct Reset: Error {}
        #expect(RetryPolicy.resumesInPlace(after: Reset(), fromPeer: true))  // inside the HTTP stack: transient
        let notFound = ModelCacheError.originStatus(url: "u", status: 404, reason: "Not Found")
        #expect(!RetryPolicy.resumesInPlace(after: notFound, fromPeer: false))
    }
}
