import ArgumentParser
import AsyncHTTPClient
import Foundation
import ModelCache
import ModelCacheCore

struct FetchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch a URL into the cache and print the blob's path as the last line.",
        discussion: "A cache hit returns at once with no network request. Interrupted downloads resume from their verified chunks.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The http:// or https:// URL to fetch.")
    var url: String

    @Option(help: "Expected SHA-256 of the whole file (64 hex digits); the fetch fails if the bytes differ.")
    var sha256: String?

    @Option(name: .shortAndLong, help: "Also place the file here (hard link, or copy across file systems).")
    var output: String?

    @Option(help: "Parallel connections to the origin.")
    var connections: Int = 4

    @Flag(help: "Print one JSON object (path, sha256, size, bytes from each source, seconds) instead of the path.")
    var json = false

    @Option(help: .hidden)
    var chunkSize: Int64 = ChunkLayout.defaultChunkSize

    func validate() throws {
        guard (1...64).contains(connections) else { throw ValidationError("--connections must be between 1 and 64") }
        guard ChunkLayout.isValidChunkSize(chunkSize) else { throw ValidationError("--chunk-size must be a power of two between 16 KiB and 64 MiB") }
    }

    func run() async throws {
        try await runReportingErrors {
            let expected = try sha256.map { s throws(ModelCacheError) in try BlobDigest(validating: s) }
            try FetchEngine.validate(url: url)
            let store = try global.openStore()
            let http = HTTPClient.forModelCache(connections: connections)
            let bar = ProgressBar()
            let result: FetchResult
            do {
                let engine = FetchEngine(store: store, http: http, logger: Logging.logger("modelcache.fetch"))
                result = try await engine.fetch(
                    FetchRequest(url: url, expected: expected, connections: connections, chunkSize: chunkSize),
                    progress: { p in bar.update(downloaded: p.downloaded, total: p.total) })
                bar.finish()
                try? await http.shutdown()
            } catch {
                bar.finish()
                try? await http.shutdown()
                throw error
            }
            if let output { try place(result.path, at: output) }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            } else {
                print(result.path)
            }
        }
    }

    func place(_ blob: String, at output: String) throws {
        let dest = URL(fileURLWithPath: output).path
        unlink(dest)
        if link(blob, dest) == 0 { return }
        do {
            try FileManager.default.copyItem(atPath: blob, toPath: dest)
        } catch {
            throw ModelCacheError.io(path: dest, detail: "cannot place the file there: \(error.localizedDescription)")
        }
    }
}

