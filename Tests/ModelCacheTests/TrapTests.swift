import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import HTTPTypes
import NIOPosix
import Testing
@testable import ModelCache
import ModelCacheCore

/// Nothing from outside can trap the node or the CLI (issue 17 §2, §6): hostile headers, URLs, redirects, command-line
/// numbers, a busy port, lying origins, idle connections. Each test ends by proving the node still answers.
@Suite(.serialized) struct TrapTests {
    static let int64Max = "9223372036854775807"

    func get(_ http: HTTPClient, _ url: String, method: HTTPMethod = .GET, headers: [(String, String)] = []) async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        var req = HTTPClientRequest(url: url)
        req.method = method
        for (k, v) in headers { req.headers.add(name: k, value: v) }
        let res = try await http.execute(req, timeout: .seconds(10))
        let body = Array(buffer: try await res.body.collect(upTo: 16 << 20))
        return (Int(res.status.code), res.headers, body)
    }

    @Test func rangeWithInt64MaxEndDoesNotTrap() async throws {
        let n = try await TestNode.start()
        let bytes = testBytes(100_000)
        try n.holds(bytes, url: "http://example.invalid/f")
        let d = BlobDigest.of(bytes)
        for method in [HTTPMethod.GET, .HEAD] {
            for range in ["bytes=0-\(Self.int64Max)", "bytes=99990-\(Self.int64Max)", "bytes=\(Self.int64Max)-\(Self.int64Max)", "bytes=-\(Self.int64Max)"] {
                let r = try await get(n.env.http, n.address.blobURL(d), method: method, headers: [("Range", range)])
                if range.hasPrefix("bytes=\(Self.int64Max)") {
                    #expect(r.status == 416, "\(method) \(range)")
                    #expect(r.headers.first(name: "Content-Range") == "bytes */100000")
                } else {
                    #expect(r.status == 206, "\(method) \(range)")
                    let first = range.hasPrefix("bytes=99990") ? 99990 : 0
                    #expect(r.headers.first(name: "Content-Range") == "bytes \(first)-99999/100000", "\(method) \(range)")
                    if method == .GET { #expect(r.body == Array(bytes[first...])) }
                }
            }
        }
        // The node still answers.
        let info = try await get(n.env.http, n.address.baseURL + "/v1/info")
        #expect(info.status == 200)
        await n.stop()
    }

    /// The browser API and the Hub endpoint answer Range through the same decision as the peer API.
    @Test func rangedAnswerOfTheBrowserAndHubRoutesClampsInt64Max() {
        for (header, expected) in [("bytes=0-\(Self.int64Max)", "bytes 0-99/100"), ("bytes=-\(Self.int64Max)", "bytes 0-99/100")] {
            guard case .serve(let status, let h, let r) = RangedAnswer.decide(size: 100, rangeHeader: header, headers: [:]) else {
                Issue.record("\(header) was refused"); continue
            }
            #expect(status == .partialContent && r == 0..<100)
            #expect(h[.contentRange] == expected)
        }
        guard case .unsatisfiable = RangedAnswer.decide(size: 100, rangeHeader: "bytes=\(Self.int64Max)-", headers: [:]) else {
            Issue.record("a start past the end was served"); return
        }
    }

    @Test func contentLengthLieFailsTheFetch() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/lie", testBytes(300_000))
        origin.inject(.longerGET(extraBytes: 5_000))
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "lie", title: "", requests: [Job.Request(url: origin.url("/lie"))])
        let j = try await n.waitForJob("lie", timeout: .seconds(20))
        #expect(j.state == .failure && j.failureReason == .fetchError, "state \(j.state), message \(j.message ?? "")")
        #expect(j.message?.contains("protocol violation") == true, "\(j.message ?? "")")
        #expect(origin.bytesServed < 2 * 305_000, "the lie was not retried forever: \(origin.bytesServed) bytes")
        #expect(try n.env.store.list().isEmpty)
        await n.stop(); await origin.stop()
    }

    @Test func originRedirectToImpossiblePortFailsTheJob() async throws {
        let origin = try await TestOrigin.start()
        origin.redirect("/r", to: "http://127.0.0.1:70000/x")
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "port", title: "", requests: [Job.Request(url: origin.url("/r"))])
        let j = try await n.waitForJob("port", timeout: .seconds(20))
        #expect(j.state == .failure, "state \(j.state), message \(j.message ?? "")")
        #expect(j.message?.contains("70000") == true, "\(j.message ?? "")")
        // Final: a restarted node on the same cache does not resume it (it used to trap at every start) and answers.
        await n.stop(keepCache: true)
        let again = try await TestNode.start(env: n.env)
        let after = try await again.node.jobs.get("port")
        #expect(after.state == .failure && after.message == j.message)
        #expect(try await get(again.env.http, again.address.baseURL + "/v1/info").status == 200)
        await again.stop(); await origin.stop()
    }

    @Test func redirectLoopFailsTheJobAsAViolation() async throws {
        let origin = try await TestOrigin.start()
        origin.redirect("/a", to: origin.url("/b"))
        origin.redirect("/b", to: origin.url("/a"))
        let n = try await TestNode.start()
        _ = try await n.node.jobs.create(id: "loop", title: "", requests: [Job.Request(url: origin.url("/a"))])
        let j = try await n.waitForJob("loop", timeout: .seconds(20))
        #expect(j.state == .failure, "state \(j.state)")
        #expect(j.message?.contains("loop") == true, "\(j.message ?? "")")
        #expect(j.errorCode == "protocol-violation")  // final at once, not paused or retried (RetryPolicy)
        #expect(origin.requests <= 4, "the loop was cut at once: \(origin.requests) requests")
        await n.stop(); await origin.stop()
    }

    /// A node with this listen port and these connection bounds (no mDNS), on a fresh cache.
    func makeNode(port: Int, idleTimeout: Duration = .seconds(30), maxConnections: Int = 512, env: TestEnvironment) throws -> Node {
        var settings = NodeSettings()
        settings.listenHost = "127.0.0.1"
        settings.listenPort = port
        settings.mdns = false
        settings.name = "test"
        settings.idleTimeout = idleTimeout
        settings.maxConnections = maxConnections
        var logger = Logger(label: "test-node")
        logger.logLevel = .critical
        return try Node(settings: settings, store: env.store, http: env.http, engineSettings: env.engine.settings, logger: logger)
    }

    @Test func busyPortIsAnErrorNotATrap() async throws {
        let first = try await TestNode.start()
        let env = try TestEnvironment()
        let second = try makeNode(port: first.port, env: env)
        let outcome = await Task { try await second.run() }.result
        guard case .failure(let e) = outcome, let mce = e as? ModelCacheError, case .portInUse = mce else {
            Issue.record("expected portInUse, got \(outcome)")
            await env.close(); await first.stop()
            return
        }
        #expect(mce.description == "port \(first.port) on 127.0.0.1 is in use: stop the other node or pass --listen HOST:PORT")
        #expect(mce.exitCode == 69)
        #expect(try await get(first.env.http, first.address.baseURL + "/v1/info").status == 200)
        await env.close(); await first.stop()
    }

    /// Opens `count` TCP connections to the port and sends nothing on them (or half a request head).
    func openIdle(_ count: Int, port: Int, partialHead: Bool) async throws -> [any Channel] {
        var channels: [any Channel] = []
        for _ in 0..<count {
            let ch = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { _ in MultiThreadedEventLoopGroup.singleton.any().makeSucceededVoidFuture() }
                .connect(host: "127.0.0.1", port: port).get()
            if partialHead { try await ch.writeAndFlush(ByteBuffer(string: "GET /v1/info HTTP/1.1\r\nHost: x\r\n")).get() }
            channels.append(ch)
        }
        return channels
    }

    @Test func idleAndSlowHeaderConnectionsAreClosedAndTheNodeStillAnswers() async throws {
        let env = try TestEnvironment()
        let node = try makeNode(port: 0, idleTimeout: .milliseconds(700), env: env)
        let task = Task { try await node.run() }
        let port = await node.listeningPort()
        let idle = try await openIdle(20, port: port, partialHead: false)
        let slow = try await openIdle(10, port: port, partialHead: true)
        // A fresh request is answered while they are open. `Connection: close`: each check opens its own connection
        // (a pooled one would itself be closed by the 0.7 s idle time-out, racing the client's reuse of it).
        let fresh = [("Connection", "close")]
        #expect(try await get(env.http, "http://127.0.0.1:\(port)/v1/info", headers: fresh).status == 200)
        // After the idle time-out every one of them is closed by the node (bounded wait).
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, (idle + slow).contains(where: \.isActive) {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect((idle + slow).filter(\.isActive).count == 0, "connections still open after the idle time-out")
        #expect(try await get(env.http, "http://127.0.0.1:\(port)/v1/info", headers: fresh).status == 200)
        for ch in idle + slow { try? await ch.close() }
        task.cancel()
        _ = await task.result
        await env.close()
    }

    @Test func connectionsPastTheCapAreClosedAtOnceAndServedOnceIdleOnesAreGone() async throws {
        let env = try TestEnvironment()
        let cap = ConnectionBudget.floor
        // The idle time-out is long against the machine's load (CI's 2 cores took over a second to open eight
        // connections), so the idle ones are still open when the extra one arrives; the extra one must be closed
        // well before that time-out.
        let idleTimeout = Duration.seconds(8)
        let node = try makeNode(port: 0, idleTimeout: idleTimeout, maxConnections: cap, env: env)
        let task = Task { try await node.run() }
        let port = await node.listeningPort()
        let opened = ContinuousClock.now
        let idle = try await openIdle(cap, port: port, partialHead: false)
        try await Task.sleep(for: .milliseconds(200))  // let the node accept them all
        #expect(idle.filter(\.isActive).count == cap)
        // The cap is reached: one more connection is closed by the node at once (it holds no descriptor).
        let extra = try await openIdle(1, port: port, partialHead: false)[0]
        while extra.isActive && ContinuousClock.now - opened < idleTimeout - .seconds(1) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(!extra.isActive, "the connection past the cap was not closed before the idle time-out")
        // Once the idle time-out has closed the idle ones, a request is served again.
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, idle.contains(where: \.isActive) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await get(env.http, "http://127.0.0.1:\(port)/v1/info").status == 200)
        for ch in idle { try? await ch.close() }
        task.cancel()
        _ = await task.result
        await env.close()
    }

    @Test func openFileLimitIsRaisedToTheHardLimit() throws {
        var before = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &before) == 0)
        let soft = ConnectionLimits.raiseOpenFileLimit()
        var after = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &after) == 0)
        #expect(after.rlim_cur == after.rlim_max)
        #expect(soft == UInt64(after.rlim_cur))
    }
}

/// The CLI turns hostile numbers into one-line errors with documented exit codes (never a trap).
@Suite(.serialized) struct CLITrapTests {
    func tempDir() -> String { NSTemporaryDirectory() + "modelcache-cli-" + UUID().uuidString }

    func expectOneLine(_ r: CLIResult, status: Int32, containing: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "exit status, stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("modelcache: error: "), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(containing), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test func portAbove65535IsAnError() async throws {
        let dir = tempDir()
        for url in ["http://127.0.0.1:70000/x", "http://[::1]:99999999999999999999/x", "http://example.invalid:65536/x"] {
            let r = try await runCLI(["fetch", "--cache-dir", dir, "--no-node", url], environment: ["SWIFT_BACKTRACE": "enable=no"])
            expectOneLine(r, status: 64, containing: "malformed URL")
        }
        let r = try await runCLI(["fetch", "--cache-dir", dir, "--no-node", "--peer", "127.0.0.1:70000", "http://127.0.0.1:1/x"],
                                 environment: ["SWIFT_BACKTRACE": "enable=no"])
        expectOneLine(r, status: 64, containing: "65535")
        PosixFile.removeTree(dir)
    }

    @Test func maxSizeOverflowIsAnError() async throws {
        let dir = tempDir()
        for (option, value) in [("--max-size", "99999999999T"), ("--max-origin-rate", "9223372036854775807K"), ("--max-upload-rate", "1.5G"), ("--max-size", "12X")] {
            let r = try await runCLI(["serve", "--cache-dir", dir, "--no-mdns", "--listen", "127.0.0.1:0", "\(option)=\(value)"],
                                     environment: ["SWIFT_BACKTRACE": "enable=no"], timeout: .seconds(20))
            expectOneLine(r, status: 64, containing: option)
        }
        PosixFile.removeTree(dir)
    }

    @Test func listenErrorsNameTheListenAddressNotAPeer() async throws {
        let dir = tempDir()
        for value in ["127.0.0.1:99999", "nocolon", ":7070"] {
            let r = try await runCLI(["serve", "--cache-dir", dir, "--no-mdns", "--listen", value],
                                     environment: ["SWIFT_BACKTRACE": "enable=no"], timeout: .seconds(20))
            expectOneLine(r, status: 64, containing: "--listen address '\(value)'")
            #expect(!r.stderr.contains("peer"), "stderr: \(r.stderr)")
        }
        PosixFile.removeTree(dir)
    }

    @Test func busyPortIsAOneLineError() async throws {
        let first = try await TestNode.start()
        let dir = tempDir()
        // With mDNS on (it used to trap on port 0 in its set-up when the listener could not bind).
        let r = try await runCLI(["serve", "--cache-dir", dir, "--listen", "127.0.0.1:\(first.port)"],
                                 environment: ["SWIFT_BACKTRACE": "enable=no"], timeout: .seconds(30))
        #expect(r.status == 69, "stderr: \(r.stderr)")
        let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("modelcache: error: ") }
        #expect(errors == ["modelcache: error: port \(first.port) on 127.0.0.1 is in use: stop the other node or pass --listen HOST:PORT"],
                "stderr: \(r.stderr)")
        await first.stop()
        PosixFile.removeTree(dir)
    }
}
