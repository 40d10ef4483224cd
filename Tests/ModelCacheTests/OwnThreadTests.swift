import Foundation
import Testing
@testable import ModelCache

/// Blocking work on threads of its own leaves Swift's cooperative pool free for everything else.
@Suite struct OwnThreadTests {
    struct Failed: Error {}

    @Test func returnsTheValueOrTheErrorOfTheWork() async throws {
        #expect(try await OwnThread.run { 6 * 7 } == 42)
        await #expect(throws: Failed.self) { try await OwnThread.run { () throws -> Int in throw Failed() } }
        // The kernel's name of the thread the work ran on (what gdb and `top -H` show).
        let name = try await OwnThread.run { (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "" }
        #expect(name == "mc-blocking\n")  // not a pool thread
    }

    /// Eight works that block their thread for 2 s each, more than the pool has threads (one per core): a task
    /// started after them still finishes before any of them (on the pool, it would wait for two of them to end).
    @Test func blockedWorksDoNotHoldThePool() async throws {
        let blockers = (0..<8).map { _ in
            Task { try await OwnThread.run { () -> ContinuousClock.Instant in usleep(2_000_000); return .now } }
        }
        try await Task.sleep(for: .milliseconds(100))  // every blocker has started its thread
        let onPool = await Task { ContinuousClock.now }.value
        var ends: [ContinuousClock.Instant] = []
        for b in blockers { ends.append(try await b.value) }
        #expect(onPool < (ends.min() ?? onPool))
    }
}
