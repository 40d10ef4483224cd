import AsyncHTTPClient
import Foundation
import ModelCacheCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A forward proxy on 127.0.0.1, port 0, that records every request line it gets: absolute-form GET/HEAD requests
/// are relayed to their origin (loopback only), CONNECT is refused with 403 (no TLS origin in the tests: the record is
/// the point). One request per connection.
final class TestProxy: Sendable {
    struct Seen: Sendable, Equatable {
        var method: String
        var target: String
        var proxyAuthorization: String?
    }

    private let seen = Mutex<[Seen]>([])
    private let listener: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)
    let port: Int

    var requests: [Seen] { seen.withLock { $0 } }
    var server: ProxyRule.Server { ProxyRule.Server(host: "127.0.0.1", port: port) }
    var url: String { "http://127.0.0.1:\(port)" }

    private init(server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>, port: Int) {
        self.listener = server
        self.port = port
    }

    static func start() async throws -> TestProxy {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let proxy = TestProxy(server: server, port: server.channel.localAddress?.port ?? 0)
        proxy.task.withLock { t in
            t = Task {
                try? await server.executeThenClose { connections in
                    await withDiscardingTaskGroup { group in
                        do {
                            for try await connection in connections {
                                group.addTask { try? await proxy.handle(connection) }
                            }
                        } catch {}
                    }
                }
            }
        }
        return proxy
    }

    func stop() async {
        try? await listener.channel.close()
        let t = task.withLock { $0 }
        t?.cancel()
        await t?.value
    }

    private func handle(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            for try await part in inbound {
                if case .head(let h) = part { head = h }
                guard case .end = part, let head else { continue }
                seen.withLock { $0.append(Seen(method: head.method.rawValue, target: head.uri,
                                                proxyAuthorization: head.headers.first(name: "Proxy-Authorization"))) }
                try await respond(to: head, outbound)
                return
            }
        }
    }

    private func respond(to head: HTTPRequestHead, _ out: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        // Only loopback origins are relayed: a test never sends traffic elsewhere.
        guard head.method != .CONNECT, head.uri.hasPrefix("http://127.0.0.1:") else {
            try await out.write(.head(HTTPResponseHead(version: .http1_1, status: .forbidden, headers: ["Content-Length": "0", "Connection": "close"])))
            try await out.write(.end(nil))
            return
        }
        var req = HTTPClientRequest(url: head.uri)
        req.method = head.method
        for (name, value) in head.headers where !["host", "connection", "proxy-authorization"].contains(name.lowercased()) {
            req.headers.add(name: name, value: value)
        }
        let res = try await HTTPClient.shared.execute(req, timeout: .seconds(30))
        let body = try await res.body.collect(upTo: 64 << 20)
        var headers = res.headers
        headers.remove(name: "Transfer-Encoding")
        headers.replaceOrAdd(name: "Connection", value: "close")
        if head.method != .HEAD { headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        try await out.write(.head(HTTPResponseHead(version: .http1_1, status: res.status, headers: headers)))
        if head.method != .HEAD, body.readableBytes > 0 { try await out.write(.body(.byteBuffer(body))) }
        try await out.write(.end(nil))
    }
}
