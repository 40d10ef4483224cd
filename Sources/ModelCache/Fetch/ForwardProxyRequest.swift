import AsyncHTTPClient
import Foundation
import ModelCacheCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// One plain-http request through a forward proxy in absolute form (`GET http://host/path HTTP/1.1`, RFC 9112
/// §3.2.2), the form a caching proxy such as Squid stores: AsyncHTTPClient only tunnels through a proxy (CONNECT),
/// which a cache cannot see into, so https origins use it (`OriginRoute`) and http origins use this. One connection
/// per request (`Connection: close`), the body streamed with backpressure, a read timeout for stalls (also while
/// waiting for the head). Requests carry no body (the engine only sends GET and HEAD).
enum ForwardProxyRequest {
    struct ReadTimeout: Error, CustomStringConvertible {
        var description: String { "the proxy sent nothing for the read timeout" }
    }

    struct ClosedEarly: Error, CustomStringConvertible {
        var description: String { "the proxy closed the connection before the end of the response" }
    }

    static func execute<T: Sendable>(_ request: HTTPClientRequest, via proxy: ProxyRule.Server,
                                     connectTimeout: TimeAmount = .seconds(3), readTimeout: TimeAmount = .seconds(20),
                                     _ handle: (HTTPClientResponse) async throws -> T) async throws -> T {
        guard let url = URLComponents(string: request.url), var host = url.host, !host.isEmpty else {
            throw ModelCacheError.malformedURL(request.url)
        }
        if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" }
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: absoluteForm(request.url))
        head.headers = request.headers
        if !head.headers.contains(name: "Host") { head.headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host) }
        head.headers.replaceOrAdd(name: "Connection", value: "close")
        if let auth = proxy.authorization { head.headers.replaceOrAdd(name: "Proxy-Authorization", value: auth) }

        let headPromise = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: HTTPResponseHead.self)
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(connectTimeout)
                .connect(host: proxy.host, port: proxy.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: readTimeout),
                            HeadCatcher(head: headPromise),
                        ])
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            headPromise.fail(error)
            throw error
        }
        return try await channel.executeThenClose { inbound, outbound in
            do {
                try await outbound.write(.head(head))
                try await outbound.write(.end(nil))
            } catch {
                // The write found the channel closed: say why it closed (a read timeout that fired before this task
                // ran, the proxy hanging up), not "I/O on closed channel". The head's promise is failed by then.
                _ = try await headPromise.futureResult.get()
                throw error
            }
            let responseHead = try await headPromise.futureResult.get()
            let response = HTTPClientResponse(version: responseHead.version, status: responseHead.status,
                                              headers: responseHead.headers, body: .stream(Body(parts: inbound)))
            return try await handle(response)
        }
    }

    /// The request target for the proxy: the whole URL without its fragment.
    static func absoluteForm(_ url: String) -> String {
        url.firstIndex(of: "#").map { String(url[..<$0]) } ?? url
    }

    /// The response body: body parts until `.end`; a connection closed before it is an error.
    struct Body: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>

        struct AsyncIterator: AsyncIteratorProtocol {
            var parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
            var ended = false

            mutating func next() async throws -> ByteBuffer? {
                while !ended {
                    switch try await parts.next() {
                    case .body(let buffer): return buffer
                    case .end: ended = true
                    case .head: throw ModelCacheError.protocolViolation("the proxy sent a second response head")
                    case nil: throw ClosedEarly()
                    }
                }
                return nil
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(parts: parts.makeAsyncIterator()) }
    }

    /// Takes the response head out of the stream (into a promise, so the body stream starts at the body), and turns
    /// the idle handler's read event into an error that ends the request.
    final class HeadCatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias InboundOut = HTTPClientResponsePart
        let head: EventLoopPromise<HTTPResponseHead>

        init(head: EventLoopPromise<HTTPResponseHead>) { self.head = head }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let h) = Self.unwrapInboundIn(data) {
                head.succeed(h)
            } else {
                context.fireChannelRead(data)
            }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
                fail(context: context, ReadTimeout())
                context.close(promise: nil)
                return
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            head.fail(error)
            context.fireErrorCaught(error)
        }

        func channelInactive(context: ChannelHandlerContext) {
            head.fail(ClosedEarly())
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            head.fail(ClosedEarly())  // a no-op once the head came; never leaves the promise pending
        }

        private func fail(context: ChannelHandlerContext, _ error: any Error) {
            head.fail(error)
            context.fireErrorCaught(error)
        }
    }
}
