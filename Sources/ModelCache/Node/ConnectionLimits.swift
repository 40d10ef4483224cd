import Foundation
import ModelCacheCore
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The bounds on a node's listeners (issue 17 §6): an idle time-out (which also bounds the time a client may take to
/// send its request headers, since the timer runs until the head is read), and a cap on concurrent connections
/// derived from RLIMIT_NOFILE, whose soft value is first raised to the hard one.
struct ConnectionLimits {
    var idleTimeout: TimeAmount
    var maxConnections: Int
    var maxControlConnections: Int

    /// Raises the soft open-file limit to the hard limit (once per process; harmless again) and derives the caps.
    static func current(_ settings: NodeSettings) -> ConnectionLimits {
        let limit = raiseOpenFileLimit()
        let (seconds, attoseconds) = settings.idleTimeout.components
        let idle = TimeAmount.milliseconds(min(max(seconds, 0), 86_400) * 1000 + attoseconds / 1_000_000_000_000_000)
        return ConnectionLimits(
            idleTimeout: idle,
            maxConnections: ConnectionBudget.maxConnections(requested: settings.maxConnections, openFileLimit: limit),
            maxControlConnections: ConnectionBudget.maxConnections(requested: 64, openFileLimit: limit))
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
