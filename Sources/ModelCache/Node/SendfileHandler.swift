import NIOCore
import NIOHTTP1
import Synchronization

/// Below Hummingbird's HTTP codec, right above NIOHTTP1's encoder (which frames a `FileRegion` like any body part):
/// turns each marker a `FileRegionSender` put in a response body into the file region it stands for, written with
/// sendfile(2). Every other part goes on untouched. The region's file stays open until its write completes or fails.
final class SendfileHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let sender: FileRegionSender
    let counter: SendfileCounter

    init(eventLoop: any EventLoop, counter: SendfileCounter = SendfileCounter()) {
        sender = FileRegionSender(eventLoop: eventLoop)
        self.counter = counter
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .body(.byteBuffer(let buffer)) = unwrapOutboundIn(data), let pending = sender.take(buffer) else {
            context.write(data, promise: promise)
            return
        }
        let file = pending.file
        pending.written.futureResult.whenComplete { _ in withExtendedLifetime(file) {} }
        if let promise { pending.written.futureResult.cascade(to: promise) }
        counter.bytes.add(Int64(pending.region.readableBytes), ordering: .relaxed)
        context.write(wrapOutboundOut(.body(.fileRegion(pending.region))), promise: pending.written)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sender.close()
    }
}

/// Added with the HTTP/1 server's `additionalChannelHandlers` (which sit above the codec, where bodies are
/// ByteBuffers): puts a `SendfileHandler` right above the connection's `HTTPResponseEncoder`, then only passes reads on.
final class SendfileInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    let counter: SendfileCounter

    init(counter: SendfileCounter) { self.counter = counter }

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        guard let encoder = try? pipeline.handler(type: HTTPResponseEncoder.self) else { return }  // no HTTP/1 encoder: bodies stay buffered
        try? pipeline.addHandler(SendfileHandler(eventLoop: context.eventLoop, counter: counter), position: .after(encoder))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }
}

/// The bytes a listener's connections handed to sendfile(2) in file regions.
final class SendfileCounter: Sendable {
    let bytes = Atomic<Int64>(0)
    var value: Int64 { bytes.load(ordering: .relaxed) }
}
