import ArgumentParser
import Foundation
import ModelCache
import ModelCacheCore

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the blobs in the cache.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print a JSON array.") var json = false

    func run() async throws {
        try await runReportingErrors {
            let records = try global.openStore().list()
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys]
                e.dateEncodingStrategy = .iso8601
                print(String(decoding: try e.encode(records), as: UTF8.self))
                return
            }
            if records.isEmpty { print("(the cache at \(try global.root) is empty)"); return }
            for r in records {
                let pin = r.pinned ? " pinned" : ""
                print("\(r.sha256.hex)  \(ProgressText.bytes(r.size))  \(r.digestSource?.rawValue ?? "no-url")\(pin)")
                for u in r.urls { print("    \(u)") }
            }
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

    func run() async throws {
        try await runReportingErrors {
            let expected = try sha256.map { s throws(ModelCacheError) in try BlobDigest(validating: s) }
            if let url { try FetchEngine.validate(url: url) }
            guard PosixFile.exists(file) else { throw ModelCacheError.io(path: file, detail: "no such file") }
            let absolute = URL(fileURLWithPath: file).path
            let r = try await changeCache(global, command: "add", mustExist: false,
                                          viaNode: { try await $0.importFile(absolute, url: url, sha256: expected) },
                                          locally: { try $0.importFile(absolute, url: url, expected: expected) })
            print(r.path)
        }
    }
}

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a blob, by SHA-256 or by URL.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A blob's SHA-256 or a URL that maps to it.") var what: String

    func run() async throws {
        try await runReportingErrors {
            let r = try await changeCache(global, command: "rm", viaNode: { try await $0.remove(what) }, locally: { try $0.remove(what) })
            print("removed \(r.sha256.hex) (\(ProgressText.bytes(r.size)))")
        }
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Re-hash every blob; a bad one is reported and removed from the cache.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await runReportingErrors {
            let reports = try await changeCache(global, command: "verify", viaNode: { try await $0.verify() }, locally: { try $0.verifyAll() })
            let bad = reports.filter { !$0.ok }
            for b in bad { print("BAD \(b.sha256.hex): \(b.problem ?? "?") (removed)") }
            print("\(reports.count - bad.count) ok, \(bad.count) bad")
            if !bad.isEmpty { throw ExitCode(5) }
        }
    }
}
