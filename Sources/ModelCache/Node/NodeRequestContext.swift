import Hummingbird
import NIOCore

/// The request context of the node's listener: Hummingbird's basics plus the client's address, which the browser
/// routes need (they answer loopback clients only). The peer API's routes stay generic over any context.
public struct NodeRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
