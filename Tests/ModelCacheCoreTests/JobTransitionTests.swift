import Foundation
import Testing
@testable import ModelCacheCore

@Suite struct JobTransitionTests {
    let d = BlobDigest.of(Array("x".utf8))
    func job(_ n: Int = 2) -> Job { Job(id: "j", title: "t", requests: (0..<n).map { Job.Request(url: "http://h/\($0)") }) }

    @Test func pendingDownloadingSuccess() {
        var j = job()
        #expect(j.state == .pending && j.result == "")
        JobTransition.apply(.start, to: &j)
        #expect(j.state == .downloading)
        JobTransition.apply(.requestDone(index: 0, digest: d, size: 1, path: "/p"), to: &j)
        #expect(j.state == .downloading)
        JobTransition.apply(.requestDone(index: 1, digest: d, size: 1, path: "/p"), to: &j)
        #expect(j.state == .success && j.result == "success" && j.failureReason == nil)
    }

    @Test func pausesOfflineAndResumes() {
        var j = job()
        JobTransition.apply(.start, to: &j)
        JobTransition.apply(.offline("origin unreachable"), to: &j)
        #expect(j.state == .pausedOffline && j.message == "origin unreachable")
        JobTransition.apply(.online, to: &j)
        #expect(j.state == .downloading && j.message == nil)
    }

    @Test func abortAndFailuresAreFinal() {
        var j = job()
        JobTransition.apply(.abort, to: &j)
        #expect(j.state == .failure && j.failureReason == .aborted && j.result == "failure")
        JobTransition.apply(.online, to: &j)
        JobTransition.apply(.requestDone(index: 0, digest: d, size: 1, path: "/p"), to: &j)
        JobTransition.apply(.start, to: &j)
        #expect(j.state == .failure && j.requests[0].result == nil)
    }

    @Test func verdicts() {
        #expect(JobTransition.verdict(for: .originStatus(url: "u", status: 404, reason: "Not Found")) ==
                .fail(.badStatus, ModelCacheError.originStatus(url: "u", status: 404, reason: "Not Found").description))
        if case .pause = JobTransition.verdict(for: .originStatus(url: "u", status: 503, reason: "x")) {} else { Issue.record("503 should pause") }
        if case .pause = JobTransition.verdict(for: .originUnreachable(url: "u", detail: "refused")) {} else { Issue.record("unreachable should pause") }
        if case .fail(.quotaExceeded, _) = JobTransition.verdict(for: .quotaExceeded(needed: 2, limit: 1)) {} else { Issue.record("quota") }
        if case .fail(.fetchError, _) = JobTransition.verdict(for: .digestMismatch(expected: d, got: d)) {} else { Issue.record("mismatch") }
    }

    @Test func jsonHasTheBackgroundFetchShape() throws {
        var j = job(1)
        JobTransition.apply(.failed(.downloadTotalExceeded, "too big"), to: &j)
        let text = String(decoding: try JSONEncoder().encode(j), as: UTF8.self)
        #expect(text.contains("\"failureReason\":\"download-total-exceeded\""))
        #expect(text.contains("\"result\":\"failure\""))
        #expect(try JSONDecoder().decode(Job.self, from: Data(text.utf8)) == j)
    }

    @Test func ids() {
        #expect(Job.isValidID("llama-3.1_8b"))
        #expect(!Job.isValidID("") && !Job.isValidID("a/b") && !Job.isValidID(String(repeating: "a", count: 129)))
    }
}
