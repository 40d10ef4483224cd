import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Testing
@testable import ModelCache
import ModelCacheCore

/// The status page, modelcache.js and the browser API (`/v1/web/…`) over HTTP on an in-process node: each refusal
/// (foreign Host, origin not allowed, cross-site without Origin, missing or wrong token, LAN client), CORS for the
/// allowed origin, and a whole job: create, events, bytes with Range, pin, delete.
@Suite(.serialized) struct WebAPITests {
    static let allowed = "http://127.0.0.1:8123"

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var code: String? {
            (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
                .flatMap { $0["error"] as? [String: Any] }.flatMap { $0["code"] as? String }
        }
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body)) }
    }

    func call(_ n: TestNode, _ method: HTTPMethod = .GET, _ path: String, host: String? = nil, origin: String? = nil,
              token: String? = nil, headers extra: [String: String] = [:], body: String? = nil) async throws -> Reply {
        var r = HTTPClientRequest(url: "http://127.0.0.1:\(n.port)\(path)")
        r.method = method
        r.headers.add(name: "Host", value: host ?? "127.0.0.1:\(n.port)")
        if let origin { r.headers.add(name: "Origin", value: origin) }
        if let token { r.headers.add(name: "X-ModelCache-Token", value: token) }
        for (k, v) in extra { r.headers.add(name: k, value: v) }
        if let body {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await n.env.http.execute(r, timeout: .seconds(20))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Array(buffer: bytes))
    }

    func jobBody(_ id: String, _ urls: [String]) -> String {
        "{\"id\":\"\(id)\",\"title\":\"web test\",\"requests\":[" + urls.map { "{\"url\":\"\($0)\"}" }.joined(separator: ",") + "]}"
    }

    @Test func servesTheStatusPageAndScripts() async throws {
        let n = try await TestNode.start()
        let page = try await call(n, .GET, "/")
        #expect(page.status == 200)
        #expect(page.headers["Content-Type"].first?.hasPrefix("text/html") == true)
        #expect(page.text.contains("<meta name=\"modelcache-token\" content=\"\(n.node.webToken)\">"))
        #expect(!page.text.contains("__MODELCACHE_TOKEN__"))
        #expect(page.headers["Content-Security-Policy"].first?.contains("frame-ancestors 'none'") == true)
        #expect(page.headers["X-Frame-Options"].first == "DENY")
        let js = try await call(n, .GET, "/modelcache.js")
        #expect(js.status == 200 && js.headers["Content-Type"].first?.hasPrefix("text/javascript") == true)
        #expect(js.text.contains("class ModelCacheRegistration") && !js.text.contains(n.node.webToken))
        #expect(try await call(n, .GET, "/ui/status.js").text.contains("new EventSource('/v1/web/events')"))
        #expect(try await call(n, .GET, "/ui/status.css").headers["Content-Type"].first?.hasPrefix("text/css") == true)
        await n.stop()
    }

    @Test func refusesForeignHostsAndOrigins() async throws {
        let n = try await TestNode.start(allowedOrigins: [Self.allowed])
        for path in ["/", "/modelcache.js", "/v1/web/jobs", "/v1/web/blobs"] {
            let rebound = try await call(n, .GET, path, host: "evil.example:\(n.port)", origin: "http://evil.example:\(n.port)")
            #expect(rebound.status == 403 && rebound.code == "unknown-host", "\(path)")
            let foreign = try await call(n, .GET, path, origin: "http://evil.example")
            #expect(foreign.status == 403 && foreign.code == "origin-not-allowed", "\(path)")
            #expect(foreign.headers["Access-Control-Allow-Origin"].isEmpty)
        }
        let wrongPort = try await call(n, .GET, "/v1/web/jobs", host: "127.0.0.1:1")
        #expect(wrongPort.status == 403 && wrongPort.code == "unknown-host")
        let img = try await call(n, .GET, "/v1/web/jobs", headers: ["Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"])
        #expect(img.status == 403 && img.code == "origin-not-allowed")
        let pageCrossOrigin = try await call(n, .GET, "/", origin: Self.allowed)
        #expect(pageCrossOrigin.status == 403 && pageCrossOrigin.headers["Access-Control-Allow-Origin"].isEmpty)
        // Preflights: only the allowed origin gets CORS headers.
        let pre = ["Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-modelcache-token"]
        let good = try await call(n, .OPTIONS, "/v1/web/jobs", origin: Self.allowed, headers: pre)
        #expect(good.status == 204)
        #expect(good.headers["Access-Control-Allow-Origin"].first == Self.allowed)
        #expect(good.headers["Access-Control-Allow-Headers"].first?.contains("X-ModelCache-Token") == true)
        let bad = try await call(n, .OPTIONS, "/v1/web/jobs", origin: "http://127.0.0.1:9999", headers: pre)
        #expect(bad.status == 403 && bad.headers["Access-Control-Allow-Origin"].isEmpty)
        // The allowed origin reads, with CORS headers.
        let ok = try await call(n, .GET, "/v1/web/jobs", origin: Self.allowed)
        #expect(ok.status == 200 && ok.headers["Access-Control-Allow-Origin"].first == Self.allowed)
        #expect(try await call(n, .GET, "/v1/web/jobs").headers["Access-Control-Allow-Origin"].isEmpty)
        // The peer API on the same port is not affected.
        #expect(try await call(n, .GET, "/v1/info", host: "evil.example", origin: "http://evil.example").status == 200)
        await n.stop()
    }

    @Test func actionsWithoutTheTokenAreRefused() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/a.bin", testBytes(300_000))
        origin.inject(.trickle(bytesPerSecond: 200_000))
        let n = try await TestNode.start(allowedOrigins: [Self.allowed])
        let body = jobBody("t1", [origin.url("/a.bin")])
        let missing = try await call(n, .POST, "/v1/web/jobs", origin: Self.allowed, body: body)
        #expect(missing.status == 401 && missing.code == "token-required")
        #expect(missing.headers["Access-Control-Allow-Origin"].isEmpty)
        let wrong = try await call(n, .POST, "/v1/web/jobs", origin: Self.allowed, token: String(repeating: "0", count: 64), body: body)
        #expect(wrong.status == 401 && wrong.code == "bad-token")
        #expect(await n.node.jobs.list().isEmpty)
        let bearer = try await call(n, .POST, "/v1/web/jobs", origin: Self.allowed,
                                    headers: ["Authorization": "Bearer \(n.node.webToken)"], body: body)
        #expect(bearer.status == 201)
        let abort = try await call(n, .POST, "/v1/web/jobs/t1/abort", origin: Self.allowed)
        #expect(abort.status == 401)
        #expect(try await n.node.jobs.get("t1").state != .failure)
        let aborted = try await call(n, .POST, "/v1/web/jobs/t1/abort", origin: Self.allowed, token: n.node.webToken)
        #expect(aborted.status == 200)
        #expect((aborted.json as? [String: Any])?["failureReason"] as? String == "aborted")
        // Pin and delete need it too.
        try n.holds(testBytes(1000, seed: 9), url: "http://example.invalid/x")
        let d = BlobDigest.of(testBytes(1000, seed: 9))
        #expect(try await call(n, .POST, "/v1/web/pin", body: "{\"what\":\"\(d.hex)\",\"pinned\":true}").status == 401)
        #expect(try await call(n, .DELETE, "/v1/web/blobs/\(d.hex)").status == 401)
        #expect(try n.env.store.lookup(digest: d)?.pinned == false)
        await n.stop(); await origin.stop()
    }

    @Test func refusesClientsOnTheLANAndOtherUsers() async throws {
        // Loopback is all this test may use, so a LAN client is a request context with a LAN address, fed to the
        // node's own routes (peer API and browser routes) without a socket; so is a loopback client of another user
        // (port 40001) or of an unknown one (40002).
        let n = try await TestNode.start(allowedOrigins: [Self.allowed])
        let router = Router(context: RemoteContext.self)
        n.node.peerAPI.addRoutes(to: router)
        let users: [Int: UInt32] = [40_000: UInt32(geteuid()), 40_001: 65534]
        WebAPI(node: n.node, access: { n.node.browserAccess.withLock { $0 } },
               clientUser: { client, _ in client.port.flatMap { users[$0] } }).addRoutes(to: router)
        let responder = router.buildResponder()
        func send(_ method: HTTPRequest.Method, _ path: String, from ip: String, port: Int = 40_000,
                  token: String? = nil) async throws -> Response {
            var head = HTTPRequest(method: method, scheme: "http", authority: "127.0.0.1:\(n.port)", path: path)
            if let token { head.headerFields[HTTPField.Name(BrowserAccess.tokenHeader)!] = token }
            var context = RemoteContext(source: .init(logger: Logger(label: "test")))
            context.remoteAddress = try SocketAddress(ipAddress: ip, port: port)
            context.localAddress = try SocketAddress(ipAddress: "127.0.0.1", port: n.port)
            return try await responder.respond(to: Request(head: head, body: .init(buffer: ByteBuffer())), context: context)
        }
        for path in ["/", "/modelcache.js", "/v1/web/jobs", "/v1/web/peers"] {
            #expect(try await send(.get, path, from: "10.1.2.3").status == .forbidden, "\(path)")
            #expect(try await send(.get, path, from: "127.0.0.1").status == .ok, "\(path)")
            #expect(try await send(.get, path, from: "127.0.0.1", port: 40_001).status == .forbidden, "\(path)")
            #expect(try await send(.get, path, from: "127.0.0.1", port: 40_002).status == .forbidden, "\(path)")
        }
        #expect(try await send(.post, "/v1/web/jobs", from: "127.0.0.1", port: 40_001, token: n.node.webToken).status == .forbidden)
        #expect(try await send(.get, "/v1/info", from: "127.0.0.1", port: 40_001).status == .ok)  // the peer API is open to all
        #expect(try await send(.post, "/v1/web/jobs", from: "10.1.2.3", token: n.node.webToken).status == .forbidden)
        #expect(try await send(.get, "/v1/web/jobs", from: "::ffff:10.1.2.3").status == .forbidden)
        #expect(try await send(.get, "/v1/info", from: "10.1.2.3").status == .ok)  // peers still get the peer API
        await n.stop()
    }

    @Test func anotherLocalUserIsRefusedOverRealSockets() async throws {
        // Another account on this machine: curl run as nobody against the node on 127.0.0.1, refused (no status
        // page, so no token); the same curl as the node's user is answered.
        guard geteuid() == 0 else { print("skipped anotherLocalUserIsRefusedOverRealSockets: needs root to run curl as another user"); return }
        let tools = ["/usr/bin/setpriv", "/usr/bin/curl"]
        if let missing = tools.first(where: { !FileManager.default.isExecutableFile(atPath: $0) }) {
            print("skipped anotherLocalUserIsRefusedOverRealSockets: \(missing) is missing"); return
        }
        let n = try await TestNode.start()
        func curl(_ path: String, asNobody: Bool, _ extra: [String] = []) async throws -> (status: Int, body: String) {
            let args = ["-sS", "--max-time", "20", "-w", "\n%{http_code}"] + extra + ["http://127.0.0.1:\(n.port)\(path)"]
            let r = asNobody
                ? try await runProcess(tools[0], ["--reuid=65534", "--regid=65534", "--clear-groups", tools[1]] + args)
                : try await runProcess(tools[1], args)
            #expect(r.status == 0, "curl failed: \(r.stderr)")
            return (Int(r.lastLine) ?? 0, r.stdout)
        }
        for path in ["/", "/modelcache.js", "/v1/web/jobs"] {
            let other = try await curl(path, asNobody: true)
            #expect(other.status == 403 && other.body.contains("\"other-user\""), "\(path): \(other.body)")
            #expect(!other.body.contains(n.node.webToken))
            #expect(try await curl(path, asNobody: false).status == 200, "\(path)")
        }
        let page = try await curl("/", asNobody: false)
        #expect(page.body.contains(n.node.webToken))
        let post = try await curl("/v1/web/pin", asNobody: true, ["-X", "POST", "-H", "X-ModelCache-Token: \(n.node.webToken)",
                                                                  "--data", "{\"what\":\"x\",\"pinned\":true}"])
        #expect(post.status == 403 && post.body.contains("\"other-user\""))
        #expect(try await curl("/v1/info", asNobody: true).status == 200)  // the peer API is for everyone
        await n.stop()
    }

    @Test func aJobThroughTheBrowserAPI() async throws {
        let origin = try await TestOrigin.start()
        let config = testBytes(10_000, seed: 5), weights = testBytes(700_000, seed: 6)
        origin.serve("/config.json", config)
        origin.serve("/model.safetensors", weights)
        let n = try await TestNode.start(allowedOrigins: [Self.allowed])
        let token = n.node.webToken
        let created = try await call(n, .POST, "/v1/web/jobs", origin: Self.allowed, token: token,
                                     body: jobBody("m1", [origin.url("/config.json"), origin.url("/model.safetensors")]))
        #expect(created.status == 201 && created.headers["Access-Control-Allow-Origin"].first == Self.allowed)
        let duplicate = try await call(n, .POST, "/v1/web/jobs", origin: Self.allowed, token: token,
                                       body: jobBody("m1", [origin.url("/config.json")]))
        #expect(duplicate.status == 409 && duplicate.code == "conflict")
        let job = try await n.waitForJob("m1")
        #expect(job.state == .success && job.downloaded == 710_000 && job.bySource["origin"] == 710_000)
        let events = try await call(n, .GET, "/v1/web/jobs/m1/events", origin: Self.allowed)
        #expect(events.headers["Content-Type"].first == "text/event-stream")
        #expect(events.headers["Access-Control-Allow-Origin"].first == Self.allowed)
        #expect(events.text.hasPrefix("event: success\ndata: {") && events.text.contains("\"result\":\"success\""))
        let ids = try await call(n, .GET, "/v1/web/jobs", origin: Self.allowed).json as? [[String: Any]]
        #expect(ids?.compactMap { $0["id"] as? String } == ["m1"])

        let d = BlobDigest.of(weights)
        let whole = try await call(n, .GET, "/v1/web/blobs/\(d.hex)/bytes", origin: Self.allowed)
        #expect(whole.status == 200 && whole.body == weights)
        let part = try await call(n, .GET, "/v1/web/blobs/\(d.hex)/bytes", origin: Self.allowed, headers: ["Range": "bytes=100-199"])
        #expect(part.status == 206 && part.body == Array(weights[100..<200]))
        #expect(part.headers["Content-Range"].first == "bytes 100-199/700000")
        #expect(part.headers["Access-Control-Expose-Headers"].first?.contains("Content-Range") == true)
        let byURL = try await call(n, .GET, "/v1/web/bytes?url=\(origin.url("/config.json"))")
        #expect(byURL.status == 200 && byURL.body == config)
        let beyond = try await call(n, .GET, "/v1/web/blobs/\(d.hex)/bytes", headers: ["Range": "bytes=800000-"])
        #expect(beyond.status == 416 && beyond.code == "range-not-satisfiable")
        #expect(try await call(n, .GET, "/v1/web/bytes?url=http://nowhere.invalid/x").status == 404)

        let blobs = try await call(n, .GET, "/v1/web/blobs").json as? [[String: Any]]
        let entry = blobs?.first { $0["sha256"] as? String == d.hex }
        #expect(entry?["urls"] as? [String] == [origin.url("/model.safetensors")])
        #expect(entry?["pinned"] as? Bool == false && entry?["lastUsedAt"] is String && entry?["path"] == nil)
        let pinned = try await call(n, .POST, "/v1/web/pin", token: token, body: "{\"what\":\"\(d.hex)\",\"pinned\":true}")
        #expect(pinned.status == 200 && (pinned.json as? [String: Any])?["pinned"] as? Bool == true)
        #expect(try n.env.store.lookup(digest: d)?.pinned == true)
        let deleted = try await call(n, .DELETE, "/v1/web/blobs/\(d.hex)", origin: Self.allowed, token: token)
        #expect(deleted.status == 200)
        #expect(try n.env.store.lookup(digest: d) == nil)
        #expect(try await call(n, .GET, "/v1/web/blobs/\(d.hex)/bytes").status == 404)
        #expect(try await call(n, .DELETE, "/v1/web/blobs/\(d.hex)", token: token).status == 404)
        #expect(try await call(n, .GET, "/v1/web/peers").json as? [Any] != nil)
        await n.stop(); await origin.stop()
    }

    @Test func theTokenFileIsPrivateAndStable() async throws {
        let env = try TestEnvironment()
        let token = try env.store.webToken()
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))
        var st = stat()
        #expect(stat(env.store.webTokenPath, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(try env.store.webToken() == token)
        chmod(env.store.webTokenPath, 0o644)
        #expect(try env.store.webToken() == token)
        #expect(stat(env.store.webTokenPath, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let cli = try await runCLI(["token", "--cache-dir", env.dir])
        #expect(cli.status == 0 && cli.lastLine == token)
        await env.close()
    }

    @Test func closingTheHubEndsEveryStream() async throws {
        let hub = EventHub<Int>()
        let open = hub.subscribe()
        let reader = Task { var n = 0; for await _ in open { n += 1 }; return n }
        try await Task.sleep(for: .milliseconds(20))
        hub.publish(1)
        hub.close()
        #expect(await reader.value == 1)
        var late = hub.subscribe().makeAsyncIterator()
        #expect(await late.next() == nil)  // a subscription after close ends at once
        #expect(hub.count == 0)
    }

    @Test func sigtermStopsANodeWithAnOpenEventStream() async throws {
        // A status page left open holds /v1/web/events; SIGTERM must still stop the node.
        let env = try TestEnvironment()
        let port = try freeLoopbackPort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: modelcacheBinary)
        p.arguments = ["serve", "--cache-dir", env.dir, "--listen", "127.0.0.1:\(port)", "--no-mdns"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { killNow(p) }
        var connected = false
        var stream: HTTPClientResponse?
        for _ in 0..<100 where !connected {
            var r = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/web/events")
            r.headers.add(name: "Host", value: "127.0.0.1:\(port)")
            if let response = try? await env.http.execute(r, timeout: .seconds(30)), response.status == .ok {
                stream = response
                connected = true
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        #expect(connected)
        kill(p.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(10)
        while p.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!p.isRunning)
        if let stream { _ = try? await stream.body.collect(upTo: 1 << 20) }  // ended by the node
        await env.close()
    }

    @Test func serveRefusesAMalformedOrigin() async throws {
        let env = try TestEnvironment()
        let r = try await runCLI(["serve", "--cache-dir", env.dir, "--no-mdns", "--listen", "127.0.0.1:0",
                                  "--allow-origin", "localhost:8000"], timeout: .seconds(20))
        #expect(r.status == 64)
        #expect(r.stderr.contains("--allow-origin 'localhost:8000' is not a web origin"))
        await env.close()
    }
}

/// A port nothing listens on now (bound, then released).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { a in
        a.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A request context with any client address, for feeding the node's routes a request "from the LAN".
struct RemoteContext: RequestContext, ConnectionRequestContext {
    struct Source: RequestContextSource { var logger: Logger }
    var coreContext: CoreRequestContextStorage
    var remoteAddress: SocketAddress?
    var localAddress: SocketAddress?

    init(source: Source) {
        coreContext = .init(source: source)
        remoteAddress = nil
        localAddress = nil
    }
}

/// The status page's first paint (issue 15): the snapshot in the page, and the header's totals.
extension WebAPITests {
    @Test func thePageCarriesASnapshotThatNoValueCanBreakOutOf() async throws {
        let n = try await TestNode.start()
        let title = "</script><script>alert(1)</script> & <b>"
        _ = try await n.node.jobs.create(id: "snap", title: title, requests: [Job.Request(url: "http://127.0.0.1:1/x.bin")])
        let page = try await call(n, .GET, "/")
        let start = try #require(page.text.range(of: "<script type=\"application/json\" id=\"snapshot\">"))
        let end = try #require(page.text.range(of: "</script>", range: start.upperBound..<page.text.endIndex))
        let json = String(page.text[start.upperBound..<end.lowerBound])
        #expect(!json.contains("<") && !json.contains(">"))
        let snapshot = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let jobs = try #require(snapshot["jobs"] as? [[String: Any]])
        #expect(jobs.first?["id"] as? String == "snap" && jobs.first?["title"] as? String == title)
        #expect(snapshot["blobs"] is [Any] && snapshot["peers"] is [Any])
        let info = try #require(snapshot["info"] as? [String: String])
        #expect(info["id"] == n.node.nodeID)
        let summary = try #require(snapshot["summary"] as? [String: Any])
        #expect(summary["totals"] is [String: Any] && summary["cacheBytes"] as? Int == 0)
        await n.stop()
    }

    @Test func theSummaryCountsBytesFromTheOriginAndHits() async throws {
        let n = try await TestNode.start()
        let origin = try await TestOrigin.start()
        origin.serve("/s.bin", testBytes(200_000))
        _ = try await n.fetch(origin.url("/s.bin"))
        _ = try await n.fetch(origin.url("/s.bin"))
        let reply = try await call(n, .GET, "/v1/web/summary")
        let s = try #require(reply.json as? [String: Any])
        let t = try #require(s["totals"] as? [String: Any])
        #expect(t["fromOrigin"] as? Int == 200_000 && t["hits"] as? Int == 1 && t["misses"] as? Int == 1, "\(reply.text)")
        #expect(s["cacheBytes"] as? Int == 200_000 && s["cacheBlobs"] as? Int == 1)
        await origin.stop()
        await n.stop()
    }
}
