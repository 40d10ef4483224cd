import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import ModelCache
import ModelCacheCore

/// A site cache above the LAN: origin requests go through the proxy the rule names (plain http in absolute form, so
/// a cache can store it; https through CONNECT), LAN peers are always asked directly, NO_PROXY and
/// `--origin-proxy none` send origin requests direct.
@Suite(.serialized) struct OriginProxyTests {
    let bytes = testBytes(700_000)

    @Test func originRequestsGoThroughTheProxyInAbsoluteForm() async throws {
        let origin = try await TestOrigin.start()
        let proxy = try await TestProxy.start()
        origin.serve("/m.bin", bytes)
        let env = try TestEnvironment(originProxy: ProxyRule(http: proxy.server))
        let r = try await env.engine.fetch(env.request(origin.url("/m.bin")))
        #expect(r.sha256 == BlobDigest.of(bytes) && env.contents(r.path) == bytes)
        let seen = proxy.requests
        #expect(seen.first == TestProxy.Seen(method: "HEAD", target: origin.url("/m.bin"), proxyAuthorization: nil))
        let gets = seen.filter { $0.method == "GET" }
        // 700,000 bytes in 11 chunks of 64 KiB: spans of 3, 2 and 2 chunks over 4 connections, then 4 single chunks,
        // each asked of the proxy by its absolute URL.
        #expect(gets.count == 7)
        #expect(gets.allSatisfy { $0.target == origin.url("/m.bin") })
        #expect(seen.count == origin.requests)  // every origin request came through the proxy
        #expect(origin.bytesServed == Int64(bytes.count))
        await env.close(); await proxy.stop(); await origin.stop()
    }

    @Test func peersAreAskedDirectly() async throws {
        let origin = try await TestOrigin.start()
        let proxy = try await TestProxy.start()
        let digest = BlobDigest.of(bytes)
        origin.serve("/m.bin", bytes, headers: [("X-Linked-Etag", "\"\(digest.hex)\"")])
        let a = try await TestNode.start()
        try a.holds(bytes, url: origin.url("/m.bin"))
        let b = try await TestNode.start(peers: [a], env: TestEnvironment(originProxy: ProxyRule(http: proxy.server)))
        let r = try await b.fetch(origin.url("/m.bin"))
        #expect(r.sources == ["peer \(a.name)": Int64(bytes.count)])
        #expect(origin.bytesServed == 0)
        // The proxy saw the origin's HEAD only: nothing addressed to the peer's port.
        #expect(proxy.requests.map(\.method) == ["HEAD"])
        #expect(!proxy.requests.contains { $0.target.contains(":\(a.port)") })
        await a.stop(); await b.stop(); await proxy.stop(); await origin.stop()
    }

    @Test func noProxyAndOptionNoneGoDirect() async throws {
        let origin = try await TestOrigin.start()
        let proxy = try await TestProxy.start()
        origin.serve("/m.bin", bytes)
        origin.serve("/n.bin", testBytes(100_000, seed: 3))
        let env = ["http_proxy": proxy.url, "no_proxy": "localhost,127.0.0.0/8"]
        let skipped = try TestEnvironment(originProxy: ProxyRule.resolve(option: nil, environment: env))
        _ = try await skipped.engine.fetch(skipped.request(origin.url("/m.bin")))
        let none = try TestEnvironment(originProxy: ProxyRule.resolve(option: "none", environment: ["http_proxy": proxy.url]))
        _ = try await none.engine.fetch(none.request(origin.url("/n.bin")))
        #expect(proxy.requests.isEmpty)
        #expect(origin.bytesServed == 800_000)
        // The same environment without no_proxy: through the proxy.
        let direct = origin.requests
        let through = try TestEnvironment(originProxy: ProxyRule.resolve(option: nil, environment: ["http_proxy": proxy.url]))
        _ = try await through.engine.fetch(through.request(origin.url("/n.bin")))
        #expect(!proxy.requests.isEmpty)
        #expect(proxy.requests.count == origin.requests - direct)
        for e in [skipped, none, through] { await e.close() }
        await proxy.stop(); await origin.stop()
    }

    @Test func proxyCredentialsAreSent() async throws {
        let origin = try await TestOrigin.start()
        let proxy = try await TestProxy.start()
        origin.serve("/m.bin", bytes)
        let rule = try ProxyRule.resolve(option: "http://site:s3cret@127.0.0.1:\(proxy.port)", environment: [:])
        let env = try TestEnvironment(originProxy: rule)
        _ = try await env.engine.fetch(env.request(origin.url("/m.bin")))
        #expect(!proxy.requests.isEmpty)
        #expect(proxy.requests.allSatisfy { $0.proxyAuthorization == "Basic c2l0ZTpzM2NyZXQ=" })
        await env.close(); await proxy.stop(); await origin.stop()
    }

    @Test func httpsOriginsAreTunnelled() async throws {
        let proxy = try await TestProxy.start()
        let env = try TestEnvironment(maxAttempts: 1, originProxy: ProxyRule(https: proxy.server))
        var req = env.request("https://127.0.0.1:9/m.bin")
        req.connections = 1
        await #expect(throws: ModelCacheError.self) { try await env.engine.fetch(req) }
        // The test proxy refuses every tunnel: that it was asked for one is the point.
        #expect(proxy.requests.first?.method == "CONNECT")
        #expect(proxy.requests.first?.target == "127.0.0.1:9")
        await env.close(); await proxy.stop()
    }

    @Test func hubUpstreamRequestsGoThroughTheProxy() async throws {
        let origin = try await TestOrigin.start()
        let proxy = try await TestProxy.start()
        origin.serve("/api/models/org/m", Array(#"{"id":"org/m"}"#.utf8))
        let env = try TestEnvironment()
        let upstream = HubUpstream(base: origin.baseURL, http: env.http, route: OriginRoute(rule: ProxyRule(http: proxy.server)),
                                   logger: .init(label: "test"))
        guard case .answer(let a) = await upstream.request(.GET, "/api/models/org/m", auth: nil) else {
            Issue.record("no answer through the proxy"); return
        }
        #expect(a.status == 200 && a.body == Array(#"{"id":"org/m"}"#.utf8))
        #expect(proxy.requests == [TestProxy.Seen(method: "GET", target: origin.url("/api/models/org/m"), proxyAuthorization: nil)])
        await env.close(); await proxy.stop(); await origin.stop()
    }

    @Test func fetchWithoutANodeReadsTheEnvironmentAndTheOption() async throws {
        let origin = try await TestOrigin.start()
        let proxy = try await TestProxy.start()
        origin.serve("/m.bin", bytes)
        let dir = NSTemporaryDirectory() + "modelcache-proxy-cli-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let r = try await runCLI(["fetch", "--no-node", "--cache-dir", dir, origin.url("/m.bin")], environment: ["http_proxy": proxy.url])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(proxy.requests.contains { $0.method == "GET" && $0.target == origin.url("/m.bin") })
        let bad = try await runCLI(["fetch", "--no-node", "--cache-dir", dir, "--origin-proxy", "socks5://127.0.0.1:1", origin.url("/other")])
        #expect(bad.status == 64 && bad.stderr.contains("--origin-proxy 'socks5://127.0.0.1:1'"))
        let badEnv = try await runCLI(["serve", "--cache-dir", dir, "--listen", "127.0.0.1:0", "--no-mdns"], environment: ["https_proxy": "https://x:1"])
        #expect(badEnv.status == 64 && badEnv.stderr.contains("https_proxy 'https://x:1'"))
        await proxy.stop(); await origin.stop()
    }

    @Test func aSilentProxyHitsTheReadTimeout() async throws {
        // Accepts connections and never answers.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let server = ProxyRule.Server(host: "127.0.0.1", port: silent.localAddress?.port ?? 0)
        await #expect(throws: ForwardProxyRequest.ReadTimeout.self) {
            try await ForwardProxyRequest.execute(HTTPClientRequest(url: "http://127.0.0.1:9/f"), via: server,
                                                  readTimeout: .milliseconds(200)) { _ in }
        }
        try await silent.close()
    }

    /// A read timeout that fires before the request is written (the writing task waited for a thread on a loaded
    /// machine) is still named a read timeout, not the write's "I/O on closed channel".
    @Test func aReadTimeoutBeforeTheRequestIsWrittenIsNamedSo() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let server = ProxyRule.Server(host: "127.0.0.1", port: silent.localAddress?.port ?? 0)
        for _ in 0..<20 {
            await #expect(throws: ForwardProxyRequest.ReadTimeout.self) {
                try await ForwardProxyRequest.execute(HTTPClientRequest(url: "http://127.0.0.1:9/f"), via: server,
                                                      readTimeout: .nanoseconds(1)) { _ in }
            }
        }
        try await silent.close()
    }

    @Test func anUnreachableProxyIsNamedInTheError() async throws {
        let proxy = try await TestProxy.start()
        let port = proxy.port
        await proxy.stop()  // nothing listens there now
        let env = try TestEnvironment(maxAttempts: 1, originProxy: ProxyRule(http: ProxyRule.Server(host: "127.0.0.1", port: port)))
        let client = env.engine.originClient
        do {
            _ = try await client.probe("http://127.0.0.1:9/m.bin")
            Issue.record("the probe went through a closed proxy")
        } catch let e as ModelCacheError {
            guard case .originUnreachable(_, let detail) = e else { Issue.record("\(e)"); return }
            #expect(detail.contains("through the proxy http://127.0.0.1:\(port)"))
        }
        await env.close()
    }
}
