import Hummingbird
import NIOCore

/// A request context that knows both ends of the client's connection: the browser routes look up which local user
/// opened it (`SocketOwner`), which needs the node's end too.
public protocol ConnectionRequestContext: RemoteAddressRequestContext {
    /// The node's end of the connection (the listen address, or the address the client connected to).
    var localAddress: SocketAddress? { get }
}

/// The request context of the node's listener: Hummingbird's basics plus both ends of the client's connection,
/// which the browser routes need (they answer the node's own user on this machine only). The peer API's routes stay
/// generic over any context.
public struct NodeRequestContext: RequestContext, ConnectionRequestContext, ChannelRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    public let localAddress: SocketAddress?
    /// The client's connection, which the routes that send files hand to their bodies (`servingConnection`).
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
        self.remoteAddress = source.channel.remoteAddress
        self.localAddress = source.channel.localAddress
    }
}
