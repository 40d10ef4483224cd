import AsyncHTTPClient
import ArgumentParser
import Foundation
import ModelCache
import ModelCacheCore

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the blobs in the cache (Hugging Face files by repository), the partial downloads and the totals.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print the blobs as a JSON array (the partial downloads: 'prune --dry-run --json').") var json = false

    func run() async throws {
        try await runReportingErrors {
            let store = try global.openStore()
            let records = try store.list()
            if json { try printJSON(records); return }
            let blobs = records.map {
                CacheListing.Blob(sha256: $0.sha256.hex, size: $0.size, lastUsed: $0.lastUsedAt, pinned: $0.pinned, urls: $0.urls,
                                  source: $0.digestSource?.rawValue)
            }
            for line in CacheListing.lines(blobs: blobs, partials: store.partials(), root: store.root) { print(line) }
        }
    }
}

struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove the partial downloads nothing is downloading now (what an interrupted fetch left to resume from).",
        discussion: "Partial downloads of a running node's unfinished jobs are kept. Blobs are never removed: use 'rm'.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Only say what would be removed.") var dryRun = false
    @Flag(help: "Print what was (or would be) removed as a JSON array.") var json = false

    func run() async throws {
        try await runReportingErrors {
            let store = try global.openExistingStore(doing: "prune")
            let http = HTTPClient.forModelCache()
            let control = ControlClient(socketPath: store.root + "/node.sock", http: http)
            var keep: Set<String> = []
            if await control.isNodeRunning() {
                do {
                    keep = Set(try await control.jobs().filter { !$0.state.isFinal }.flatMap { $0.requests.map(\.url) })
                } catch {
                    try? await http.shutdown()
                    throw error
                }
            }
            try? await http.shutdown()
            let removed = try store.prunePartials(dryRun: dryRun, keepURLs: keep)
            if json { try printJSON(removed); return }
            for p in removed { print("\(dryRun ? "would remove" : "removed") \(ProgressText.bytes(p.diskBytes))  \(p.url)") }
            let bytes = removed.reduce(Int64(0)) { $0 + $1.diskBytes }
            print("\(dryRun ? "would free" : "freed") \(ProgressText.bytes(bytes)) (\(removed.count) partial download\(removed.count == 1 ? "" : "s"))")
        }
    }
}

struct AddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Import a local file (for example from a USB stick) so it is served for URL.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The file to import.") var file: String
    @Option(help: "The URL this file is the content of.") var url: String?
    @Option(help: "Expected SHA-256; the import fails if the file differs.") var sha256: String?
    @Flag(help: "Print the blob as one JSON object instead of its path.") var json = false

    func run() async throws {
        try await runReportingErrors {
            let expected = try sha256.map { s throws(ModelCacheError) in try BlobDigest(validating: s) }
            if let url { try FetchEngine.validate(url: url) }
            guard PosixFile.exists(file) else { throw ModelCacheError.io(path: file, detail: "no such file") }
            let absolute = URL(fileURLWithPath: file).path
            let r = try await changeCache(global, command: "add", mustExist: false,
                                          viaNode: { try await $0.importFile(absolute, url: url, sha256: expected) },
                                          locally: { try $0.importFile(absolute, url: url, expected: expected) })
            if json { try printJSON(r) } else { print(r.path) }
        }
    }
}

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a blob, by SHA-256 or by URL.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A blob's SHA-256 (or a unique start of it, 4 digits or more) or a URL that maps to it.") var what: String
    @Flag(help: "Print the removed blob as one JSON object.") var json = false

    func run() async throws {
        try await runReportingErrors {
            let r = try await changeCache(global, command: "rm", viaNode: { try await $0.remove(what) }, locally: { try $0.remove(what) })
            if json { try printJSON(r) } else { print("removed \(r.sha256.hex) (\(ProgressText.bytes(r.size)))") }
        }
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Re-hash every blob; a bad one is reported and removed from the cache.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print one JSON object per blob (sha256, ok, problem) as an array.") var json = false

    func run() async throws {
        try await runReportingErrors {
            let reports = try await changeCache(global, command: "verify", viaNode: { try await $0.verify() }, locally: { try $0.verifyAll() })
            let bad = reports.filter { !$0.ok }
            if json {
                try printJSON(reports)
                if !bad.isEmpty { throw ExitCode(5) }
                return
            }
            for b in bad { print("BAD \(b.sha256.hex): \(b.problem ?? "?") (removed)") }
            print("\(reports.count - bad.count) ok, \(bad.count) bad")
            if !bad.isEmpty { throw ExitCode(5) }
        }
    }
}
