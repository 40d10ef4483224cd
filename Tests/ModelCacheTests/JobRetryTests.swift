import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// A job that keeps failing ends with a reason (persisted, across restarts); a paused job runs again when bytes flow.
@Suite(.serialized) struct JobRetryTests {
    /// A node started on a cache holding an unfinished job whose last `unreportedTries` tries never reported.
    func nodeResuming(id: String, url: String, unreportedTries: Int) async throws -> TestNode {
        let env = try TestEnvironment()
        var job = Job(id: id, title: "", requests: [Job.Request(url: url)])
        job.state = .downloading
        var h = RetryPolicy.History()
        h.attempts = unreportedTries
        job.retry = h
        try env.store.saveJob(job)
        return try await TestNode.start(env: env)
    }

    @Test func anOriginThatAlwaysFailsTheSameWayFailsTheJobAfterFiveTries() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/f", testBytes(10_000))
        origin.inject(.status(500))
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "always500", title: "", requests: [Job.Request(url: origin.url("/f"))])
        let j = try await n.waitForJob("always500", timeout: .seconds(60))
        #expect(j.state == .failure && j.failureReason == .badStatus)
        #expect(j.errorCode == "bad-status")
        #expect(j.message?.contains("5 times in a row") == true && j.message?.contains("500") == true)
        #expect(j.retry?.sameFailures == 5)
        // The reason is persisted with the job.
        let saved = try #require(try n.env.store.loadJobs().first { $0.id == "always500" })
        #expect(saved.state == .failure && saved.message == j.message)
        let requests = origin.requests
        try await Task.sleep(for: .milliseconds(600))
        #expect(origin.requests == requests)  // nothing retries any more
        await n.stop(); await origin.stop()
    }

    @Test func aJobWhoseTriesStoppedTheNodeAtEveryStartFailsOnResumeWithoutLooping() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/f", testBytes(10_000))
        // As a node that died during each of its 5 tries left it: 5 tries started, none reported.
        let n = try await nodeResuming(id: "crashy", url: origin.url("/f"), unreportedTries: 5)
        let j = try await n.waitForJob("crashy")
        #expect(j.state == .failure && j.failureReason == .fetchError)
        #expect(j.message?.contains("stopped during each of the last 5") == true)
        #expect(origin.gets == 0)
        await n.stop(); await origin.stop()
    }

    @Test func aJobWithFewerUnreportedTriesResumesAndSucceeds() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(300_000)
        origin.serve("/f", bytes)
        let n = try await nodeResuming(id: "once", url: origin.url("/f"), unreportedTries: 2)
        let j = try await n.waitForJob("once")
        #expect(j.state == .success && j.retry == nil)
        await n.stop(); await origin.stop()
    }

    @Test func aPausedJobIsRunningAgainWhileBytesFlow() async throws {
        var origin = try await TestOrigin.start()
        let port = origin.port
        let bytes = testBytes(1_500_000)
        origin.serve("/m", bytes)
        origin.inject(.trickle(bytesPerSecond: 100_000))
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "back", title: "", requests: [Job.Request(url: origin.url("/m"))])
        _ = try await n.waitForJob("back", until: { $0.downloaded > 200_000 })
        await origin.kill()
        let paused = try await n.waitForJob("back", until: { $0.state == .pausedOffline })
        #expect(paused.state == .pausedOffline && paused.errorCode == "fetch-error")
        origin = try await TestOrigin.start(port: port)
        origin.serve("/m", bytes)
        origin.inject(.trickle(bytesPerSecond: 100_000))
        let flowing = try await n.waitForJob("back", until: { $0.downloaded > paused.downloaded || $0.state.isFinal })
        let running = try await n.waitForJob("back", timeout: .seconds(5), until: { $0.state != .pausedOffline })
        #expect(flowing.downloaded > paused.downloaded)
        #expect(running.state == .downloading || running.state == .success)
        #expect(running.message == nil)
        let done = try await n.waitForJob("back")
        #expect(done.state == .success)
        await n.stop(); await origin.stop()
    }
}
