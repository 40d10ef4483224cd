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
    static func follow(_ id: String, control: ControlClient, bar: ProgressBar, failOffline: Bool = false) async throws -> Job {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            bar.finish()
            FileHandle.standardError.write(Data("modelcache: detached; job \(id) goes on in the node. Follow it with: modelcache wait \(id)\n".utf8))
            exit(130)
        }
        source.resume()
        defer { source.cancel(); signal(SIGINT, SIG_DFL) }
        let shown = Mutex<String?>(nil)
        let job = try await control.follow(id, stop: { j in failOffline && j.state == .pausedOffline && j.downloaded == 0 }) { j in
            bar.update(downloaded: j.downloaded, total: j.downloadTotal > 0 ? j.downloadTotal : nil)
            let note: String? = j.state.isFinal ? nil : j.state == .pausedOffline ? j.message.map { "paused: \($0); still waiting (Ctrl-C detaches)" }
                : j.message.map { "\($0) (Ctrl-C detaches)" }
            if shown.withLock({ s in defer { s = note }; return s != note }), let note {
                bar.finish()
                FileHandle.standardError.write(Data("modelcache: \(note)\n".utf8))
            }
        }
        bar.finish()
        if !job.state.isFinal {  // failOffline: end as a fetch without a node would
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
        return NodeError(code: code, message: "job \(id) failed (\(failureReason?.rawValue ?? "?")): \(message ?? "")")
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
            throw ModelCacheError.noSource("no node serves \(store.root): start one with 'modelcache serve'")
        }
        try await body(control)
    } catch {
        try? await http.shutdown()
        throw error
    }
    try? await http.shutdown()
}

func printJSON(_ value: some Encodable) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try e.encode(value), as: UTF8.self))
}

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jobs", abstract: "List the node's background fetches.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print a JSON array.") var json = false

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in
                let jobs = try await control.jobs()
                if json { try printJSON(jobs) } else { for j in jobs { print(j.line) } }
            }
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show one job (JSON).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The job id.") var id: String

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in try printJSON(try await control.job(id)) }
        }
    }
}

struct WaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Follow a job until it ends; print its files' paths (exit non-zero if it failed).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The job id.") var id: String

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in
                let job = try await JobFollower.follow(id, control: control, bar: ProgressBar())
                guard job.state == .success else { throw job.failure }
                for r in job.requests { print(r.path ?? "") }
            }
        }
    }
}

struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "abort", abstract: "Abort a job.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The job id.") var id: String

    func run() async throws {
        try await runReportingErrors {
            try await withRunningNode(global) { control in print(try await control.abort(id).line) }
        }
    }
}

struct PinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pin", abstract: "Keep a blob out of LRU eviction.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A blob's SHA-256 or a URL that maps to it.") var what: String

    func run() async throws {
        try await runReportingErrors {
            let r = try await changeCache(global, command: "pin", viaNode: { try await $0.pin(what, true) }, locally: { try $0.setPinned(what, true) })
            print("pinned \(r.sha256.hex)")
        }
    }
}

struct UnpinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpin", abstract: "Let a blob be evicted again.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A blob's SHA-256 or a URL that maps to it.") var what: String

    func run() async throws {
        try await runReportingErrors {
            let r = try await changeCache(global, command: "unpin", viaNode: { try await $0.pin(what, false) }, locally: { try $0.setPinned(what, false) })
            print("unpinned \(r.sha256.hex)")
        }
    }
}
