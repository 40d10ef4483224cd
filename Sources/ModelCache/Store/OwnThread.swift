import CLinuxIO
import Foundation

/// Long blocking work (hashing whole files, the cache's `verify`, a Hub cache import, a commit's fsync) runs on a
/// thread of its own. Not on Swift's cooperative pool: it has one thread per core, on Linux the same threads as
/// Dispatch's global queue, and every route, peer transfer and job of the node waits for them. Two blocked ones stall
/// a 2-core node outright (the test suite showed exactly that: pipes read on the global queue froze its in-process
/// servers for 5 s).
public enum OwnThread {
    /// Runs `work` on a new thread (named `mc-blocking` in the kernel, for stack dumps and `top -H`) and
    /// returns what it returned, or throws what it threw.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await result(work).get()
    }

    /// The same, with the outcome as a `Result`.
    public static func result<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
        await withCheckedContinuation { c in
            let thread = Thread {
                _ = modelcache_name_this_thread("mc-blocking")
                c.resume(returning: Result { try work() })
            }
            thread.start()
        }
    }
}
