import AsyncHTTPClient
import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// `modelcache serve` as a real process: jobs survive the client, and a SIGKILLed or SIGTERMed node resumes its jobs.
@Suite(.serialized) struct NodeProcessTests {
    func startServe(_ dir: String, extra: [String] = []) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: modelcacheBinary)
        p.arguments = ["serve", "--cache-dir", dir, "--listen", "127.0.0.1:0", "--no-mdns"] + extra
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    func waitForNode(_ control: ControlClient) async throws {
        for _ in 0..<100 {
            if await control.isNodeRunning() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the node did not start")
    }

    /// SIGKILL: the job is resumed from the journal. SIGTERM (graceful shutdown): the job service cancels the job and
    /// saves it as pending (not failed) before the node exits.
    @Test(arguments: [SIGKILL, SIGTERM])
    func stoppedNodeResumesItsJobFromVerifiedChunks(signal: Int32) async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(24 * 1024 * 1024)
        origin.serve("/big.bin", bytes)
        origin.inject(.trickle(bytesPerSecond: 2_000_000))
        let dir = NSTemporaryDirectory() + "modelcache-node-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let http = HTTPClient.forModelCache()
        defer { Task { try? await http.shutdown() } }
        let control = ControlClient(socketPath: dir + "/node.sock", http: http)

        var node = try startServe(dir)
        try await waitForNode(control)
        _ = try await control.createJob(id: "big", title: "big", requests: [Job.Request(url: origin.url("/big.bin"))])
        // Wait (bounded) until the node journalled at least two 4 MiB chunks, then kill it hard.
        var journalled = 0
        for _ in 0..<300 where journalled < 2 {
            try await Task.sleep(for: .milliseconds(50))
            journalled = journalledChunks(in: dir)
        }
        await stopProcess(node, signal)
        try #require(journalled >= 2)
        if signal == SIGTERM {
            #expect(node.terminationStatus == 0)
            let saved = try Store(root: dir).loadJobs().first { $0.id == "big" }
            #expect(saved?.state == .pending && saved?.failureReason == nil)
        }
        try await origin.waitUntilQuiet()
        origin.clearFaults()
        origin.resetCounters()

        node = try startServe(dir)
        defer { killNow(node) }
        try await waitForNode(control)
        let job = try await control.follow("big")
        #expect(job.state == .success)
        #expect(job.requests[0].result == BlobDigest.of(bytes))
        // Only what was not verified before the kill came from the origin again.
        #expect(origin.bytesServed <= Int64(bytes.count) - Int64(journalled) * ChunkLayout.defaultChunkSize)
        await origin.stop()
    }

    @Test func cliDetachWaitJobsAndAbort() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(3_000_000)
        origin.serve("/m.bin", bytes)
        origin.serve("/slow.bin", testBytes(8_000_000, seed: 9))
      try await withServe { dir, _, _ in
        let detached = try await runCLI(["fetch", "--cache-dir", dir, "--detach", origin.url("/m.bin")])
        #expect(detached.status == 0)
        let id = detached.lastLine
        let waited = try await runCLI(["wait", "--cache-dir", dir, id])
        #expect(waited.status == 0, "stderr: \(waited.stderr)")
        #expect(waited.lastLine == dir + "/blobs/sha256/" + BlobDigest.of(bytes).hex)
        let status = try await runCLI(["status", "--cache-dir", dir, "--json", id])
        #expect(status.stdout.contains("\"state\":\"success\"") && status.stdout.contains("\"result\":\"success\""))
        #expect(status.stdout.contains("\"url\":\"http://127.0.0.1:") && !status.stdout.contains("\\/"))  // slashes not escaped
        // Human by default, and a unique prefix of the id is enough (as git and docker take).
        let human = try await runCLI(["status", "--cache-dir", dir, String(id.prefix(6))])
        #expect(human.status == 0 && human.stdout.hasPrefix("job       \(id)\nstate     success\n"), "\(human.stdout) \(human.stderr)")
        #expect(human.stdout.contains("sources   origin 2.9 MiB · from the LAN: 0%"), "\(human.stdout)")
        let detachedJSON = try await runCLI(["fetch", "--cache-dir", dir, "--detach", "--json", origin.url("/m.bin") + "?again"])
        #expect(detachedJSON.stdout.hasPrefix("{") && detachedJSON.stdout.contains("\"id\":\""), "\(detachedJSON.stdout)")

        origin.inject(.trickle(bytesPerSecond: 200_000), path: "/slow.bin")
        let slow = try await runCLI(["fetch", "--cache-dir", dir, "--detach", origin.url("/slow.bin")]).lastLine
        let aborted = try await runCLI(["abort", "--cache-dir", dir, slow])
        #expect(aborted.status == 0 && aborted.stdout.contains("failure (aborted)"))
        let waitAborted = try await runCLI(["wait", "--cache-dir", dir, slow])
        #expect(waitAborted.status == 130 && waitAborted.stderr.contains("aborted"))
        let jobs = try await runCLI(["jobs", "--cache-dir", dir])
        #expect(jobs.stdout.contains("\(id)  success") && jobs.stdout.contains("\(slow)  failure (aborted)"))
        let unknown = try await runCLI(["status", "--cache-dir", dir, "no-such-job"])
        #expect(unknown.status == 2 && unknown.stderr == "modelcache: error: no job no-such-job: see 'modelcache jobs --all'\n")
        // Finished jobs can be dropped; the files stay.
        let cleared = try await runCLI(["jobs", "clear", "--cache-dir", dir])
        #expect(cleared.status == 0 && cleared.stdout.hasPrefix("cleared "), "\(cleared.stderr)")
        let none = try await runCLI(["jobs", "--all", "--cache-dir", dir])
        #expect(!none.stdout.contains(id) && !none.stdout.contains(slow), "\(none.stdout)")
        #expect(PosixFile.exists(dir + "/blobs/sha256/" + BlobDigest.of(bytes).hex))
      }
        await origin.stop()
    }
}

/// One node per cache, and the commands that change the cache go through it (issue 17).
extension NodeProcessTests {
    /// A `serve` process on a new cache, running until `body` returns.
    func withServe(_ body: (_ dir: String, _ node: Process, _ control: ControlClient) async throws -> Void) async throws {
        let dir = NSTemporaryDirectory() + "modelcache-node-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let node = try startServe(dir)
        defer { killNow(node) }
        let http = HTTPClient.forModelCache()
        defer { Task { try? await http.shutdown() } }
        let control = ControlClient(socketPath: dir + "/node.sock", http: http)
        try await waitForNode(control)
        try await body(dir, node, control)
    }

    @Test func aSecondServeOnTheSameCacheIsRefusedNamingTheFirstPidAndLeavesItsSocket() async throws {
      try await withServe { dir, node, control in

        let second = try await runCLI(["serve", "--cache-dir", dir, "--listen", "127.0.0.1:0", "--no-mdns"], timeout: .seconds(20))
        #expect(second.status == 75, "stderr: \(second.stderr)")
        #expect(second.stderr.contains("pid \(node.processIdentifier)") && second.stderr.split(separator: "\n").count == 1,
                "stderr: \(second.stderr)")
        #expect(await control.isNodeRunning())  // the first node's control socket is still there and answers
        #expect(CacheLock.holder(root: dir) == CacheLock.Holder(pid: node.processIdentifier, command: "serve"))
      }
    }

    @Test func addPinUnpinVerifyAndRmGoThroughTheRunningNode() async throws {
      try await withServe { dir, node, _ in
        defer { unlink(dir + "-f.bin") }
        let bytes = testBytes(100_000)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "-f.bin"))
        let hex = BlobDigest.of(bytes).hex

        // The node holds the cache's lock the whole time: a command running in its own process could not take it
        // (it would wait, then fail with "cache-busy"), so each success below was done by the node.
        let add = try await runCLI(["add", "--cache-dir", dir, dir + "-f.bin", "--url", "http://h/f.bin"], timeout: .seconds(20))
        #expect(add.status == 0, "stderr: \(add.stderr)")
        #expect(add.lastLine == dir + "/blobs/sha256/" + hex)
        #expect(try await runCLI(["pin", "--cache-dir", dir, "http://h/f.bin"], timeout: .seconds(20)).stdout == "pinned \(hex)\n")
        #expect(try await runCLI(["unpin", "--cache-dir", dir, hex], timeout: .seconds(20)).stdout == "unpinned \(hex)\n")
        let verify = try await runCLI(["verify", "--cache-dir", dir], timeout: .seconds(20))
        #expect(verify.status == 0 && verify.lastLine == "1 ok, 0 bad", "\(verify.stdout) \(verify.stderr)")
        let rm = try await runCLI(["rm", "--cache-dir", dir, "http://h/f.bin"], timeout: .seconds(20))
        #expect(rm.status == 0 && rm.stdout.hasPrefix("removed \(hex)"), "\(rm.stdout) \(rm.stderr)")
        let missing = try await runCLI(["rm", "--cache-dir", dir, "http://h/f.bin"], timeout: .seconds(20))
        #expect(missing.status == 2, "stderr: \(missing.stderr)")
        #expect(CacheLock.holder(root: dir)?.pid == node.processIdentifier)
        #expect(!PosixFile.exists(dir + "/blobs/sha256/" + hex))
      }
    }
}
