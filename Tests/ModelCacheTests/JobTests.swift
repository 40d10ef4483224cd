import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Background fetches owned by a node: every state and failure reason, offline pause and resume, single flight,
/// cache limits.
@Suite(.serialized) struct JobTests {
    @Test func twoFileJobSucceedsWithProgress() async throws {
        let origin = try await TestOrigin.start()
        let config = testBytes(10_000), weights = testBytes(700_000, seed: 3)
        origin.serve("/config.json", config)
        origin.serve("/model.safetensors", weights)
        let n = try await TestNode.start()
        let updates = Task { () -> [Job] in
            var seen: [Job] = []
            for await j in n.node.jobs.events.subscribe() where j.id == "m1" {
                seen.append(j)
                if j.state.isFinal { break }
            }
            return seen
        }
        try await Task.sleep(for: .milliseconds(20))
        _ = try await n.node.jobs.create(id: "m1", title: "tiny model", requests: [
            Job.Request(url: origin.url("/config.json")),
            Job.Request(url: origin.url("/model.safetensors"), sha256: BlobDigest.of(weights)),
        ])
        let j = try await n.waitForJob("m1")
        #expect(j.state == .success && j.result == "success" && j.failureReason == nil)
        #expect(j.downloadTotal == 710_000 && j.downloaded == 710_000)
        #expect(j.bySource["origin"] == 710_000)
        #expect(j.requests.map(\.result) == [BlobDigest.of(config), BlobDigest.of(weights)])
        #expect(PosixFile.readAll(j.requests[1].path!) == weights)
        let states = await updates.value.map(\.state)
        #expect(states.first == .pending || states.first == .downloading)
        #expect(states.contains(.downloading) && states.last == .success)
        await n.stop(); await origin.stop()
    }

    @Test func badStatusFailsTheJob() async throws {
        let origin = try await TestOrigin.start()
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "gone", title: "", requests: [Job.Request(url: origin.url("/missing"))])
        let j = try await n.waitForJob("gone")
        #expect(j.state == .failure && j.failureReason == .badStatus)
        #expect(j.message?.contains("404") == true)
        await n.stop(); await origin.stop()
    }

    @Test func wrongDigestIsAFetchError() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/f", testBytes(100_000))
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "bad", title: "", requests: [
            Job.Request(url: origin.url("/f"), sha256: BlobDigest.of([1, 2, 3]))])
        let j = try await n.waitForJob("bad")
        #expect(j.state == .failure && j.failureReason == .fetchError)
        #expect(try n.env.store.list().isEmpty)
        await n.stop(); await origin.stop()
    }

    @Test func abortStopsTheDownload() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/slow", testBytes(2_000_000))
        origin.inject(.trickle(bytesPerSecond: 500_000))
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "a", title: "", requests: [Job.Request(url: origin.url("/slow"))])
        _ = try await n.waitForJob("a", until: { $0.downloaded > 0 })
        let aborted = try await n.node.jobs.abort("a")
        #expect(aborted.state == .failure && aborted.failureReason == .aborted)
        // Quiet for a whole second: the origin's writer pauses 50 ms between pieces, longer on a loaded machine.
        try await origin.waitUntilQuiet(for: .seconds(1))
        let (served, gets) = (origin.bytesServed, origin.gets)
        try await Task.sleep(for: .milliseconds(500))
        #expect(origin.bytesServed == served && origin.gets == gets)  // nothing more is downloaded
        #expect(served < 2_000_000)
        #expect(try await n.node.jobs.get("a").state == .failure)
        await n.stop(); await origin.stop()
    }

    /// A job for `paths` of `origin` on `n` fails for `reason` before a byte is asked of the origin.
    func expectFailsBeforeDownloading(_ n: TestNode, _ origin: TestOrigin, _ paths: [String], downloadTotal: Int64 = 0,
                                      reason: Job.FailureReason, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        _ = try await n.node.jobs.create(id: "t", title: "", requests: paths.map { Job.Request(url: origin.url($0)) },
                                         downloadTotal: downloadTotal)
        let j = try await n.waitForJob("t")
        #expect(j.state == .failure && j.failureReason == reason, sourceLocation: sourceLocation)
        #expect(origin.gets == 0, sourceLocation: sourceLocation)
        await n.stop(); await origin.stop()
    }

    @Test func declaredTotalExceededFailsBeforeDownloading() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/f", testBytes(300_000))
        try await expectFailsBeforeDownloading(try await TestNode.start(), origin, ["/f"], downloadTotal: 1000, reason: .downloadTotalExceeded)
    }

    @Test func quotaExceededFailsBeforeDownloading() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/a", testBytes(300_000))
        origin.serve("/b", testBytes(300_000, seed: 5))
        try await expectFailsBeforeDownloading(try await TestNode.start(maxCacheSize: 500_000), origin, ["/a", "/b"], reason: .quotaExceeded)
    }

    @Test func lruEvictionKeepsPinnedBlobs() async throws {
        let origin = try await TestOrigin.start()
        for (i, path) in ["/1", "/2", "/3"].enumerated() { origin.serve(path, testBytes(200_000, seed: UInt64(i + 1))) }
        let n = try await TestNode.start(maxCacheSize: 450_000)
        let first = try await n.fetch(origin.url("/1"))
        _ = try n.env.store.setPinned(first.sha256.hex, true)
        let second = try await n.fetch(origin.url("/2"))
        let third = try await n.fetch(origin.url("/3"))  // needs room: evicts /2 (LRU, unpinned), never /1 (pinned)
        let stored = Set(try n.env.store.list().map(\.sha256))
        #expect(stored == [first.sha256, third.sha256])
        #expect(!stored.contains(second.sha256))
        #expect(try n.env.store.totalSize() <= 450_000)
        await n.stop(); await origin.stop()
    }

    @Test func pausesWhileOfflineAndResumesByItself() async throws {
        var origin = try await TestOrigin.start()
        let port = origin.port
        let bytes = testBytes(1_000_000)
        origin.serve("/m", bytes)
        origin.inject(.trickle(bytesPerSecond: 100_000))  // per connection
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "off", title: "", requests: [Job.Request(url: origin.url("/m"))])
        _ = try await n.waitForJob("off", until: { $0.downloaded > 400_000 })
        await origin.kill()  // the network goes away mid-download
        let paused = try await n.waitForJob("off", until: { $0.state != .downloading })
        #expect(paused.state == .pausedOffline)
        #expect(paused.message?.contains("cannot reach the origin") == true)
        origin = try await TestOrigin.start(port: port)  // and comes back
        origin.serve("/m", bytes)
        let done = try await n.waitForJob("off")
        #expect(done.state == .success)
        #expect(PosixFile.readAll(done.requests[0].path!) == bytes)
        #expect(origin.bytesServed < Int64(bytes.count))  // verified chunks were not fetched again
        await n.stop(); await origin.stop()
    }

    @Test func twoJobsForOneFileShareOneDownload() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(1_000_000)
        origin.serve("/same", bytes)
        origin.inject(.trickle(bytesPerSecond: 4_000_000))
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "x", title: "", requests: [Job.Request(url: origin.url("/same"))])
        _ = try await n.node.jobs.create(id: "y", title: "", requests: [Job.Request(url: origin.url("/same"))])
        let x = try await n.waitForJob("x"), y = try await n.waitForJob("y")
        #expect(x.state == .success && y.state == .success)
        #expect(x.requests[0].result == y.requests[0].result)
        #expect(origin.bytesServed == Int64(bytes.count))  // the origin served the bytes once
        await n.stop(); await origin.stop()
    }

    @Test func invalidAndDuplicateJobsAreRefused() async throws {
        let n = try await TestNode.start()
        await #expect(throws: JobManager.Failure.invalidID("a/b")) {
            try await n.node.jobs.create(id: "a/b", title: "", requests: [Job.Request(url: "http://127.0.0.1:1/x")])
        }
        await #expect(throws: ModelCacheError.malformedURL("nope")) {
            try await n.node.jobs.create(id: "ok", title: "", requests: [Job.Request(url: "nope")])
        }
        _ = try await n.node.jobs.create(id: "dup", title: "", requests: [Job.Request(url: "http://127.0.0.1:1/x")])
        await #expect(throws: JobManager.Failure.duplicate("dup")) {
            try await n.node.jobs.create(id: "dup", title: "", requests: [Job.Request(url: "http://127.0.0.1:1/x")])
        }
        await n.stop()
    }
}

@Suite struct OfflineJobTests {
    @Test func peersOnlyJobNeverAsksTheOrigin() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(500_000)
        origin.serve("/m", bytes)
        let teacher = try await TestNode.start()
        try teacher.holds(bytes, url: origin.url("/m"))
        let student = try await TestNode.start(peers: [teacher])
        _ = try await student.node.jobs.create(id: "p", title: "", requests: [Job.Request(url: origin.url("/m"), origin: false)])
        let j = try await student.waitForJob("p")
        #expect(j.state == .success && j.bySource == ["peer \(teacher.name)": 500_000])
        #expect(origin.requests == 0)  // not even a HEAD
        await teacher.stop(); await student.stop(); await origin.stop()
    }
}

/// What happens to jobs when their node stops.
@Suite struct JobShutdownTests {
    @Test func stoppingTheNodeSavesARunningJobAsPendingAndTheNextNodeResumesIt() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(1_000_000)
        origin.serve("/m", bytes)
        origin.inject(.trickle(bytesPerSecond: 200_000))  // per connection
        let first = try await TestNode.start()
        _ = try await first.node.jobs.create(id: "r", title: "", requests: [Job.Request(url: origin.url("/m"))])
        _ = try await first.waitForJob("r", until: { $0.downloaded > 300_000 })
        await first.stop(keepCache: true)  // cancels the node's services, the job service among them
        let saved = try #require(try first.env.store.loadJobs().first { $0.id == "r" })
        #expect(saved.state == .pending && saved.failureReason == nil)  // resumable, not failed
        #expect(saved.message?.contains("shutdown") == true)
        try await origin.waitUntilQuiet()
        origin.resetCounters()

        let second = try await TestNode.start(env: first.env)
        let done = try await second.waitForJob("r")
        #expect(done.state == .success)
        #expect(PosixFile.readAll(try #require(done.requests[0].path)) == bytes)
        #expect(origin.bytesServed < Int64(bytes.count))  // it went on from the chunks verified before the stop
        await second.stop(); await origin.stop()
    }
}
