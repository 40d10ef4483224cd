import Foundation
@testable import ModelCache

/// What a child process (the built `modelcache` binary, or another program) printed, and its exit status.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var lastLine: String { stdout.split(separator: "\n").last.map(String.init) ?? "" }
}

/// Runs the built `modelcache` binary (after `prefix`, a command such as `env` or `setpriv …`, if given).
func runCLI(_ args: [String], environment: [String: String] = [:], prefix: [String] = [], timeout: Duration = .seconds(60)) async throws -> CLIResult {
    if prefix.isEmpty { return try await runProcess(modelcacheBinary, args, environment: environment, timeout: timeout) }
    return try await runProcess(prefix[0], Array(prefix.dropFirst()) + [modelcacheBinary] + args, environment: environment, timeout: timeout)
}

/// Runs any program (killed after `timeout`) and captures what it prints.
func runProcess(_ executable: String, _ args: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> CLIResult {
    let p = Process()
    let out = Pipe(), err = Pipe()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read both pipes on threads of their own (`readToEnd`), concurrently so a chatty child never blocks on a full
    // pipe.
    async let o = readToEnd(out.fileHandleForReading)
    async let e = readToEnd(err.fileHandleForReading)
    let deadline = ContinuousClock.now + timeout
    while p.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    let (od, ed) = await (o, e)
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus, stdout: String(decoding: od, as: UTF8.self), stderr: String(decoding: ed, as: UTF8.self))
}

/// Reads a pipe to its end on a thread of its own. Not on a Dispatch queue: on Linux, Swift's cooperative pool runs
/// on Dispatch's global queue threads, so each blocked read there took a thread from every test's tasks (in-process
/// servers included): with a few children running, the whole suite stalled for seconds (a stack dump showed seven
/// global-queue threads in `read` and one running tests' code), and streaming tests hit their 5 s read timeout.
func readToEnd(_ h: FileHandle) async -> Data {
    (try? await OwnThread.run { h.readDataToEndOfFile() }) ?? Data()
}

/// A running `modelcache` (started by `startCLI`): its process and what it writes on stderr, read until it exits.
struct RunningCLI {
    var process: Process
    var stderr: Task<String, Never>

    /// Sends `signal`, then waits for the exit; returns the status and stderr.
    func stop(_ signal: Int32) async -> (status: Int32, stderr: String) {
        kill(process.processIdentifier, signal)
        let text = await stderr.value
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}

/// Starts the built `modelcache` without waiting for it (stdout discarded).
func startCLI(_ args: [String], environment: [String: String] = [:]) throws -> RunningCLI {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: modelcacheBinary)
    p.arguments = args
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    let handle = err.fileHandleForReading
    return RunningCLI(process: p, stderr: Task { String(decoding: await readToEnd(handle), as: UTF8.self) })
}

/// Waits for a child to exit without holding a thread of Swift's cooperative pool (the in-process servers of the
/// other tests run there: two blocked threads stall them all). Polls, bounded by `within`; then SIGKILL. Returns the
/// exit status.
@discardableResult
func waitForExit(_ p: Process, within: Duration = .seconds(30)) async -> Int32 {
    let deadline = ContinuousClock.now + within
    while p.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    for _ in 0..<500 where p.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    p.waitUntilExit()  // exited: returns at once
    return p.terminationStatus
}

/// Sends `signal` to a child and waits for it as `waitForExit` does.
@discardableResult
func stopProcess(_ p: Process, _ signal: Int32 = SIGTERM, within: Duration = .seconds(30)) async -> Int32 {
    if p.isRunning { kill(p.processIdentifier, signal) }
    return await waitForExit(p, within: within)
}

/// The clean-up of a child a test may leave running when it ends early (for a `defer`, which cannot wait
/// asynchronously): SIGKILL, so the reap that follows takes milliseconds and no graceful shutdown holds a thread.
func killNow(_ p: Process) {
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
}
