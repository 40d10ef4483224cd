import AsyncHTTPClient
import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// `serve --listen HOST:0` binds any free port: everything that reports the listen address reports that port.
@Suite struct ListenAddressTests {
    @Test func aNodeOnPortZeroReportsThePortItBoundEverywhere() async throws {
        let t = try await TestNode.start()  // --listen 127.0.0.1:0
        let banner = try #require(await t.node.serveBanner())
        let port = banner.listen.port
        #expect(port != 0)
        // The reported port is the one that answers: this node's peer API is there.
        let res = try await t.env.http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/info"), timeout: .seconds(5))
        let body = String(buffer: try await res.body.collect(upTo: 1 << 16))
        #expect(res.status == .ok && body.contains(t.node.nodeID), "\(body)")
        #expect(banner.text.contains("on 127.0.0.1:\(port);"), "\(banner.text)")
        #expect(banner.text.contains("status page http://127.0.0.1:\(port)/"), "\(banner.text)")
        #expect(banner.metadata["listen"] == "127.0.0.1:\(port)")
        let info = try await ControlClient(socketPath: t.node.controlSocketPath, http: t.env.http).info()
        #expect(info["port"] == String(port))
        await t.stop()
    }

    @Test func theStatusPageOfAWildcardListenerIsOnLoopbackAndAnIPv6AddressHasBrackets() {
        let any = ServeBanner(nodeID: "n", name: "a", cacheDir: "/c", listen: PeerAddress(host: "0.0.0.0", port: 41000), controlSocket: "/c/node.sock")
        #expect(any.text == "modelcache: node n 'a' serving /c on 0.0.0.0:41000; control socket /c/node.sock; status page http://127.0.0.1:41000/")
        let v6 = ServeBanner(nodeID: "n", name: "a", cacheDir: "/c", listen: PeerAddress(host: "fd00::7", port: 41001), controlSocket: "/s")
        #expect(v6.metadata["listen"] == "[fd00::7]:41001")
        #expect(v6.text.hasSuffix("status page http://[fd00::7]:41001/"), "\(v6.text)")
    }

    /// The real command: the banner `serve` prints names the port the control API reports, not 0.
    @Test func serveOnPortZeroPrintsTheBoundPort() async throws {
        let dir = NSTemporaryDirectory() + "modelcache-listen-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let serve = try startCLI(["serve", "--cache-dir", dir, "--listen", "127.0.0.1:0", "--no-mdns"])
        let http = HTTPClient.forModelCache()
        let control = ControlClient(socketPath: dir + "/node.sock", http: http)
        var port: String?
        for _ in 0..<200 where port == nil {  // bounded: up to 10 s for the node to come up
            port = try? await control.info()["port"]
            if port == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        try? await http.shutdown()
        let (status, stderr) = await serve.stop(SIGTERM)
        let bound = try #require(port, "the node did not start: \(stderr)")
        #expect(bound != "0")
        #expect(stderr.contains("on 127.0.0.1:\(bound); control socket"), "\(stderr)")
        #expect(!stderr.contains("127.0.0.1:0"), "\(stderr)")
        #expect(status == 0)
    }
}
