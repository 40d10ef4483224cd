import AsyncHTTPClient
import Foundation
import ModelCache
import ModelCacheCore

/// Runs a command that changes the cache (`add`, `rm`, `pin`, `unpin`, `verify`): through the node when one serves the
/// cache (it holds the cache's lock), else in this process while holding that lock. Waits up to `wait` for another
/// such command to finish.
func changeCache<T: Sendable>(_ global: GlobalOptions, command: String, mustExist: Bool = true, wait: Duration = .seconds(600),
                              viaNode: (ControlClient) async throws -> T, locally: (Store) throws -> T) async throws -> T {
    let store = mustExist ? try global.openExistingStore(doing: command) : try global.openStore()
    let http = HTTPClient.forModelCache()
    let control = ControlClient(socketPath: store.root + "/node.sock", http: http)
    do {
        let deadline = ContinuousClock.now + wait
        while true {
            if await control.isNodeRunning() {
                let r = try await viaNode(control)
                try? await http.shutdown()
                return r
            }
            if let lock = try CacheLock.tryAcquire(root: store.root, command: command) {
                store.removeOwnTemporaries()
                let r = try withExtendedLifetime(lock) { try locally(store) }
                try? await http.shutdown()
                return r
            }
            guard ContinuousClock.now < deadline else {
                let who = CacheLock.holder(root: store.root).map { "'\($0.command)' (pid \($0.pid))" } ?? "another process"
                throw CacheFolderError.busy("\(who) holds the lock of \(store.root) and no node answers on its control socket: wait for it to end, or stop it")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    } catch {
        try? await http.shutdown()
        throw error
    }
}
