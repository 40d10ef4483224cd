import Foundation
import ModelCacheCore
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The bounds on a node's listeners (issue 17 §6): an idle time-out (which also bounds the time a client may take to
/// send its request headers, since the timer runs until the head is read), and a cap on concurrent connections
/// derived from RLIMIT_NOFILE, whose soft value is first raised to the hard one. Past the cap (or past a quarter of it
/// from one address) a connection is closed at once (ConnectionGate); twice the cap, nothing more is accepted at all
/// (the rest wait in the listen backlog), so descriptors are never exhausted even by connections being refused.
struct ConnectionLimits {
    var idleTimeout: TimeAmount
    var maxConnections: Int
    var maxControlConnections: Int
    /// Shared by every connection of the peer listener.
    var peerGate: ConnectionGateBox

    /// Raises the soft open-file limit to the hard limit (once per process; harmless again) and derives the caps.
    static func current(_ settings: NodeSettings) -> ConnectionLimits {
        let limit = raiseOpenFileLimit()
        let (seconds, attoseconds) = settings.idleTimeout.components
        let idle = TimeAmount.milliseconds(min(max(seconds, 0), 86_400) * 1000 + attoseconds / 1_000_000_000_000_000)
        let cap = ConnectionBudget.maxConnections(requested: settings.maxConnections, openFileLimit: limit)
        return ConnectionLimits(
            idleTimeout: idle,
            maxConnections: cap,
            maxControlConnections: ConnectionBudget.maxConnections(requested: 64, openFileLimit: limit),
            peerGate: ConnectionGateBox(ConnectionGate(maxTotal: cap, maxPerAddress: ConnectionGate.perAddressShare(of: cap))))
    }

    /// The soft RLIMIT_NOFILE after raising it to the hard limit (the soft one if raising fails).
    @discardableResult
    static func raiseOpenFileLimit() -> UInt64 {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return 1024 }
        if rl.rlim_cur < rl.rlim_max {
            var raised = rl
            raised.rlim_cur = rl.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(rl.rlim_cur)
    }
}

/// Recognises a listener that could not bind because its address is taken.
enum ListenError {
    static func isAddressInUse(_ error: any Error) -> Bool {
        if let io = error as? IOError, io.errnoCode == EADDRINUSE { return true }
        return String(describing: error).contains("Address already in use")
    }
}

/// The shared ConnectionGate of one listener.
final class ConnectionGateBox: Sendable {
    private let gate: Mutex<ConnectionGate>
    init(_ gate: ConnectionGate) { self.gate = Mutex(gate) }
    func admit(_ address: String) -> Bool { gate.withLock { $0.admit(address) } }
    func release(_ address: String) { gate.withLock { $0.release(address) } }
}

/// First handler after HTTP decoding on every accepted connection: takes a slot in the gate, or closes the
/// connection at once when the listener (or that remote address) is at its cap; frees the slot on close.
final class ConnectionGateHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any  // passed through untouched
    private let gate: ConnectionGateBox
    private var admitted: String?

    init(gate: ConnectionGateBox) { self.gate = gate }

    func handlerAdded(context: ChannelHandlerContext) {
        let address = context.channel.remoteAddress?.ipAddress ?? "unix"
        if gate.admit(address) {
            admitted = address
        } else {
            // Closed once the pipeline is set up (closing inside its set-up would fail the set-up instead).
            let channel = context.channel
            channel.eventLoop.execute { channel.close(promise: nil) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let admitted { gate.release(admitted) }
        admitted = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }
}
