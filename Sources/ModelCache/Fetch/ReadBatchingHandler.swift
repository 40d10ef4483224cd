#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ModelCacheCore
import NIOCore
import NIOHTTP1

/// Applies `ReadBatching` to one HTTP/1 client connection: sits after the response decoder, sees each request head
/// going out and each response part coming in, and sets the socket's `SO_RCVLOWAT` to the marks the policy returns.
/// Installed on every origin and peer connection by `HTTPClient.forModelCache`.
final class ReadBatchingHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private var policy: ReadBatching
    private var isHeadRequest = false
    private let start = NIODeadline.now()

    init(settings: ReadBatching.Settings = .init()) { policy = ReadBatching(settings: settings) }

    private var now: Duration { .nanoseconds((NIODeadline.now() - start).nanoseconds) }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(let head) = unwrapOutboundIn(data) {
            isHeadRequest = head.method == .HEAD
            apply(policy.requestSent(), context)
        }
        context.write(data, promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            apply(policy.responseStarts(bodyLength: Self.bodyLength(head, isHeadRequest: isHeadRequest), now: now), context)
        case .body(let bytes):
            apply(policy.received(bytes.readableBytes, now: now), context)
        case .end:
            apply(policy.responseEnds(), context)
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        apply(policy.responseEnds(), context)
        context.fireErrorCaught(error)
    }

    /// The body length a response head announces, when its bytes are exactly that many and follow on the socket:
    /// nil for an answer to HEAD, 1xx, 204 and 304, a chunked or otherwise encoded body, and a missing, repeated or
    /// malformed Content-Length.
    static func bodyLength(_ head: HTTPResponseHead, isHeadRequest: Bool) -> Int64? {
        let code = head.status.code
        guard !isHeadRequest, code >= 200, code != 204, code != 304, !head.headers.contains(name: "Transfer-Encoding") else { return nil }
        let lengths = head.headers[canonicalForm: "Content-Length"]
        guard lengths.count == 1, let text = lengths.first, !text.isEmpty, text.utf8.count <= 19,
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let n = Int64(text) else { return nil }
        return n
    }

    /// Sets the mark, at most a quarter of the socket's receive buffer (about half the receive window): the sender keeps
    /// sending while the reader is woken, and the kernel never grows the buffer for it (over half the buffer,
    /// `tcp_set_rcvlowat` does, and clamps the receive window to the mark: a far origin's transfer would slow down).
    /// A smaller mark than the policy's is always safe: it only wakes the reader sooner.
    private func apply(_ mark: Int?, _ context: ChannelHandlerContext) {
        guard let mark else { return }
        guard let options = context.channel.syncOptions else { policy.failed(); return }
        do {
            var value = mark
            if mark > 1 {
                let buffer = Int(try options.getOption(ChannelOptions.socketOption(.so_rcvbuf)))
                value = max(1, min(mark, buffer / 4))
            }
            try options.setOption(Self.lowWaterMark, value: SocketOptionValue(value))
        } catch {
            // A socket that refuses the mark (closed, or not TCP): stay at 1 for good.
            policy.failed()
            try? options.setOption(Self.lowWaterMark, value: 1)
        }
    }

    static let lowWaterMark = ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_RCVLOWAT))
}
