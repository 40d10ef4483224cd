import ArgumentParser
import AsyncHTTPClient
import Foundation
import ModelCache
import ModelCacheCore
import Synchronization

/// Follows a node's job with a progress bar until it ends, showing its pauses and retries; Ctrl-C detaches (the job
/// goes on in the node).
enum JobFollower {
    /// `failOffline` (a foreground `fetch`): a job that pauses offline before any byte moved is aborted and reported
    /// with the error a fetch without a node gives (same message, same exit status).
    static func follow(_ id: String, control: ControlClient, display: ProgressDisplay, failOffline: Bool = false) async throws -> Job {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            display.finish()
            Terminal.write("modelcache: detached; job \(id) goes on in the node. Follow it with: modelcache wait \(id)\n")
            // _exit, not exit: the other threads still run, and exit's clean-up (the runtime's static objects)
            // under them crashed a fetch that was writing progress. Nothing is buffered: stderr, the journal.
            _exit(130)
        }
        source.resume()
        defer { source.cancel(); signal(SIGINT, SIG_DFL) }
        let shown = Mutex<String?>(nil)
        let job = try await control.follow(id, stop: { j in failOffline && j.state == .pausedOffline && j.downloaded == 0 }) { j in
            if let word = j.stateWord {
                display.waiting(word)
            } else {
                display.update(downloaded: j.downloaded, total: j.downloadTotal > 0 ? j.downloadTotal : nil, sources: j.bySource)
            }
            let note: String? = j.state.isFinal ? nil : j.state == .pausedOffline ? j.message.map { "paused: \($0); still waiting (Ctrl-C detaches)" }
                : j.message.map { "\($0) (Ctrl-C detaches)" }
            if shown.withLock({ s in defer { s = note }; return s != note }), let note { display.note(note) }
        }
        if !job.state.isFinal {  // failOffline: end as a fetch without a node would
            display.finish()
            _ = try? await control.abort(id)
            throw NodeError(code: job.errorCode ?? "fetch-error", message: job.message ?? "job \(id) is paused offline")
        }
        return job
    }
}

extension Job {
    /// The job as `fetch --json` reports a single file, or the job's failure as an error.
    func fetchResult(seconds: Double) throws -> FetchResult {
        guard state == .success, let r = requests.first, let d = r.result, let path = r.path else { throw failure }
        return FetchResult(path: path, sha256: d, size: r.size ?? 0, sources: bySource, seconds: seconds,
                           cached: bySource.isEmpty, resumedBytes: 0)
    }

    var failure: NodeError {
        let mapped: String = switch failureReason {
        case .badStatus?: "bad-status"
        case .quotaExceeded?: "quota-exceeded"
        case .downloadTotalExceeded?: "download-total-exceeded"
        case .aborted?: "aborted"
        default: "digest-mismatch"
        }
        let code = errorCode ?? mapped
        // A failure with an error behind it reads as that error reads without a node (same line, same status).
        if errorCode != nil, let message, !message.isEmpty { return NodeError(code: code, message: message) }
        return NodeError(code: code, message: "job \(id) failed (\(failureReason?.rawValue ?? "?")): \(message ?? "")")
    }

    /// What the job waits for, when no byte flows: nil while it transfers (or has ended).
    var stateWord: String? {
        switch state {
        case .pending: return "starting"
        case .pausedOffline: return "paused: " + (message ?? "offline")
        case .downloading:
            if let message { return message }  // "retrying after: …"
            return downloaded == 0 && bySource.isEmpty ? "connecting" : nil
        case .success, .failure: return nil
        }
    }

    /// The name a progress line gives this job: its one file, else its title.
    var displayName: String {
        if requests.count == 1, let r = requests.first { return ProgressLine.displayName(url: r.url) }
        return title.isEmpty ? id : title
    }

    /// The end-of-job line: size, time, rate, bytes per source, the LAN's share.
    func summary(name: String, moved: Int64, seconds: Double) -> String {
        let size = requests.reduce(Int64(0)) { $0 + ($1.size ?? 0) }
        return TransferSummary.line(name: name, size: size, seconds: seconds, moved: moved, sources: bySource, cached: bySource.isEmpty)
    }

    /// `status ID` in words: one field a line.
    var details: String {
        var lines = ["job       \(id)", "state     \(state.rawValue)" + (failureReason.map { " (\($0.rawValue))" } ?? "")]
        if let message { lines.append("message   \(message)") }
        let total = downloadTotal > 0 ? ProgressText.bytes(downloadTotal) : "?"
        lines.append("progress  \(ProgressText.bytes(downloaded)) / \(total)")
        if !bySource.isEmpty {
            lines.append("sources   " + bySource.sorted { $0.key < $1.key }.map { "\($0.key) \(ProgressText.bytes($0.value))" }.joined(separator: " · ")
                         + (TransferSummary.lanShare(bySource).map { " · from the LAN: \($0)%" } ?? ""))
        }
        for r in requests {
            lines.append("file      \(r.url)")
            if let d = r.result { lines.append("          sha256 \(d.hex)  \(ProgressText.bytes(r.size ?? 0))  \(r.path ?? "")") }
        }
        return lines.joined(separator: "\n")
    }

    var line: String {
        let total = downloadTotal > 0 ? ProgressText.bytes(downloadTotal) : "?"
        let reason = failureReason.map { " (\($0.rawValue))" } ?? ""
        let why = state == .failure || state == .pausedOffline ? message.map { "  (\($0))" } ?? "" : ""
        return "\(id)  \(state.rawValue)\(reason)  \(ProgressText.bytes(downloaded)) / \(total)  \(title)\(why)"
    }
}

/// Runs `body` with the control client of the node serving this cache (or says how to start one), then closes it.
func withRunningNode(_ global: GlobalOptions, _ body: (ControlClient) async throws -> Void) async throws {
    let store = try global.openStore()
    let http = HTTPClient.forModelCache()
    let control = ControlClient(socketPath: store.root + "/node.sock", http: http)
    do {
        guard await control.isNodeRunning() else {
            throw NodeError(code: "no-node", message: "no node serves \(store.root) (jobs and peers live in a node): start one with 'modelcache serve'; 'modelcache fetch URL' works without one")
        }
        try await body(control)
    } catch {
        try? await http.shutdown()
        throw error
    }
    try? await http.shutdown()
}

/// The one job whose id is `prefix` or starts with it (as git and docker take unique prefixes).
func resolveJob(_ prefix: String, control: ControlClient) async throws -> String {
    let ids = try await control.jobs().map(\.id)
    switch UniquePrefix.match(prefix, in: ids) {
    case .exact(let id), .unique(let id): return id
    case .none: throw NodeError(code: "not-found", message: "no job \(prefix): see 'modelcache jobs --all'")
    case .ambiguous(let some):
        throw NodeError(code: "invalid-argument", message: "job id prefix '\(prefix)' is ambiguous (\(some.prefix(5).joined(separator: ", "))): type more of it")
    }
}

func printJSON(_ value: some Encodable) throws {
    print(try jsonText(value))
}

/// Stable JSON: sorted keys, slashes not escaped, dates in ISO 8601.
func jsonText(_ value: some Encodable) throws -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    e.dateEncodingStrategy = .iso8601
    return String(decoding: try e.encode(value), as: UTF8.self)
}

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "List the node's background fetches (unfinished ones and the last finished ones).",
        subcommands: [JobsListCommand.self, JobsClearCommand.self], defaultSubcommand: JobsListCommand.self)
}

struct JobsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the node's jobs.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print a JSON array.") var json = false
    @Flag(help: "Show every finished job, not only the last \(JobsListCommand.recentFinished).") var all = false

    static let recentFinished = 10

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in
                let jobs = try await control.jobs()
                let shown = all ? jobs : JobsListCommand.recent(jobs)
                if json { try printJSON(shown); return }
                if jobs.isEmpty { print("(no jobs: start one with 'modelcache fetch URL')"); return }
                let running = shown.filter { !$0.state.isFinal }, done = shown.filter(\.state.isFinal)
                for j in running + done { print(j.line) }
                if shown.count < jobs.count {
                    print("(\(jobs.count - shown.count) older finished jobs hidden: 'modelcache jobs --all' shows them, 'modelcache jobs clear' drops them)")
                }
            }
        }
    }

    /// Unfinished jobs and the last finished ones (the node lists jobs oldest first).
    static func recent(_ jobs: [Job]) -> [Job] {
        let finished = jobs.filter(\.state.isFinal)
        let keep = Set(finished.suffix(recentFinished).map(\.id))
        return jobs.filter { !$0.state.isFinal || keep.contains($0.id) }
    }
}

struct JobsClearCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "clear", abstract: "Forget the node's finished jobs (their files stay in the cache).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in
                let n = try await control.clearFinishedJobs()
                print("cleared \(n) finished job\(n == 1 ? "" : "s")")
            }
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show one job.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The job id (or a unique prefix of it).") var id: String
    @Flag(help: "Print the job as one JSON object.") var json = false

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in
                let job = try await control.job(try await resolveJob(id, control: control))
                if json { try printJSON(job) } else { print(job.details) }
            }
        }
    }
}

struct WaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Follow a job until it ends; print its files' paths (exit non-zero if it failed).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The job id (or a unique prefix of it).") var id: String
    @Flag(name: .shortAndLong, help: "No progress on stderr.") var quiet = false
    @Flag(help: "Print the finished job as one JSON object instead of its paths.") var json = false

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in
                let id = try await resolveJob(id, control: control)
                let first = try await control.job(id)
                let display = ProgressDisplay(name: first.displayName, quiet: quiet)
                let job: Job
                do { job = try await JobFollower.follow(id, control: control, display: display) } catch {
                    display.finish()
                    throw error
                }
                guard job.state == .success else { display.finish(); throw job.failure }
                display.finish(summary: job.summary(name: first.displayName, moved: display.movedThisRun, seconds: display.now))
                if json { try printJSON(job) } else { for r in job.requests { print(r.path ?? "") } }
            }
        }
    }
}

struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "abort", abstract: "Abort a job.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The job id (or a unique prefix of it).") var id: String
    @Flag(help: "Print the job as one JSON object.") var json = false

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in
                let job = try await control.abort(try await resolveJob(id, control: control))
                if json { try printJSON(job) } else { print(job.line) }
            }
        }
    }
}

struct PinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pin", abstract: "Keep a blob out of LRU eviction.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A blob's SHA-256 (or a unique start of it, 4 digits or more) or a URL that maps to it.") var what: String
    @Flag(help: "Print the blob as one JSON object.") var json = false

    func run() async throws {
        try await runReportingErrors {
            let r = try await changeCache(global, command: "pin", viaNode: { try await $0.pin(what, true) }, locally: { try $0.setPinned(what, true) })
            if json { try printJSON(r) } else { print("pinned \(r.sha256.hex)") }
        }
    }
}

struct UnpinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpin", abstract: "Let a blob be evicted again.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A blob's SHA-256 (or a unique start of it, 4 digits or more) or a URL that maps to it.") var what: String
    @Flag(help: "Print the blob as one JSON object.") var json = false

    func run() async throws {
        try await runReportingErrors {
            let r = try await changeCache(global, command: "unpin", viaNode: { try await $0.pin(what, false) }, locally: { try $0.setPinned(what, false) })
            if json { try printJSON(r) } else { print("unpinned \(r.sha256.hex)") }
        }
    }
}
