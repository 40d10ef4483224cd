import AsyncHTTPClient
import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Following a node's job from the CLI: until the job ends, through pauses and read time-outs, with the same errors
/// as without a node.
extension NodeProcessTests {
    /// A loopback port on which nothing listens now (an origin started there later comes back).
    func freePort() async throws -> Int {
        let probe = try await TestOrigin.start()
        let port = probe.port
        await probe.stop()
        return port
    }

    @Test func fetchThroughANodeWithAnUnreachableOriginFailsLikeWithoutANode() async throws {
        let url = "http://127.0.0.1:\(try await freePort())/model.bin"
        let dir = NSTemporaryDirectory() + "modelcache-node-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let alone = try await runCLI(["fetch", "--cache-dir", dir, "--no-node", url])
        let node = try startServe(dir)
        defer { killNow(node) }
        let http = HTTPClient.forModelCache()
        defer { Task { try? await http.shutdown() } }
        try await waitForNode(ControlClient(socketPath: dir + "/node.sock", http: http))
        let through = try await runCLI(["fetch", "--cache-dir", dir, url], timeout: .seconds(40))
        #expect(alone.status == 4 && through.status == 4, "alone: \(alone.stderr) through: \(through.stderr)")
        let line = through.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(line.hasPrefix("modelcache: error: cannot reach the origin for \(url)"))
        #expect(alone.stderr.split(separator: "\n").last.map(String.init) == line)
        // The job it created is not left retrying in the node.
        let jobs = try await runCLI(["jobs", "--cache-dir", dir])
        #expect(jobs.stdout.contains("failure (aborted)") && !jobs.stdout.contains("paused-offline"))
    }

    @Test func waitOnAPausedJobKeepsWaitingShowsThePauseAndEndsWithTheJob() async throws {
        let port = try await freePort()
        let bytes = testBytes(2_000_000)
        let dir = NSTemporaryDirectory() + "modelcache-node-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let node = try startServe(dir)
        defer { killNow(node) }
        // A client whose read time-out (1 s) is far shorter than the pause: following must survive it.
        let http = HTTPClient.forModelCache(readTimeout: .seconds(1))
        defer { Task { try? await http.shutdown() } }
        let control = ControlClient(socketPath: dir + "/node.sock", http: http)
        try await waitForNode(control)
        _ = try await control.createJob(id: "later", title: "", requests: [Job.Request(url: "http://127.0.0.1:\(port)/m.bin")])
        let seen = Counter()
        let follower = Task { try await control.follow("later", update: { j in if j.state == .pausedOffline { seen.add() } }) }
        let waiter = Task { try await runCLI(["wait", "--cache-dir", dir, "later"], timeout: .seconds(60)) }
        try await Task.sleep(for: .seconds(3))  // three read time-outs of the in-process client
        #expect(try await control.job("later").state == .pausedOffline)
        let origin = try await TestOrigin.start(port: port)  // the origin comes back
        origin.serve("/m.bin", bytes)
        let done = try await follower.value
        #expect(done.state == .success && done.requests[0].result == BlobDigest.of(bytes))
        #expect(seen.value > 0)
        let waited = try await waiter.value
        #expect(waited.status == 0, "stderr: \(waited.stderr)")
        #expect(waited.stderr.contains("paused: cannot reach the origin"))
        #expect(waited.lastLine == dir + "/blobs/sha256/" + BlobDigest.of(bytes).hex)
        await origin.stop()
    }
}

/// A count shared with a `@Sendable` callback.
final class Counter: Sendable {
    private let n = Mutex(0)
    func add() { n.withLock { $0 += 1 } }
    var value: Int { n.withLock { $0 } }
}

import Synchronization
