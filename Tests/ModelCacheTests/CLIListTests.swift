import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// `list` (header, Hub repositories, partial downloads, totals), `prune`, digest prefixes (issue 15).
@Suite(.serialized) struct CLIListTests {
    func tempDir() -> String { NSTemporaryDirectory() + "modelcache-list-" + UUID().uuidString }

    /// Starts a fetch of a trickled file and kills it once some chunks are verified: a partial download stays.
    func leavePartial(_ origin: TestOrigin, _ path: String, dir: String) async throws {
        let fetch = try startCLI(["fetch", "--cache-dir", dir, "--quiet", "--connections", "1", "--chunk-size", "65536", origin.url(path)])
        for _ in 0..<200 where origin.bytesServed < 400_000 { try await Task.sleep(for: .milliseconds(25)) }
        _ = await fetch.stop(SIGKILL)
    }

    @Test func listGroupsHubFilesShowsPartialsAndTotalsAndPruneDropsThePartials() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/half.bin", testBytes(2_000_000))
        origin.inject(.trickle(bytesPerSecond: 400_000))
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let file = dir + "-f.bin"
        defer { unlink(file) }
        for (i, url) in ["https://huggingface.co/acme/tiny/resolve/main/model.safetensors",
                         "https://huggingface.co/acme/tiny/resolve/main/config.json", "http://example.invalid/plain.bin"].enumerated() {
            try PosixFile.writeAtomically(file, testBytes(10_000 * (i + 1), seed: UInt64(i)))
            #expect(try await runCLI(["add", "--cache-dir", dir, file, "--url", url]).status == 0)
        }
        try await leavePartial(origin, "/half.bin", dir: dir)

        let list = try await runCLI(["list", "--cache-dir", dir])
        let lines = list.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "SHA256        SIZE        LAST USED         SOURCE         FILE", "\(list.stdout)")
        #expect(lines.contains("acme/tiny  (Hugging Face, 2 files, 29.3 KiB)"), "\(list.stdout)")
        #expect(lines.contains { $0.hasSuffix("import         config.json") } && lines.contains { $0.hasSuffix("import         model.safetensors") }, "\(list.stdout)")
        #expect(lines.contains { $0.hasSuffix("import         http://example.invalid/plain.bin") }, "\(list.stdout)")
        #expect(lines.contains { $0.hasPrefix("  ") && $0.contains(" of 1.9 MiB verified, 1.9 MiB on disk  \(origin.url("/half.bin"))") }, "\(list.stdout)")
        #expect(lines.last == "total: 3 blobs, 58.6 KiB · 1 partial download, 1.9 MiB on disk", "\(list.stdout)")

        let dry = try await runCLI(["prune", "--cache-dir", dir, "--dry-run"])
        #expect(dry.stdout == "would remove 1.9 MiB  \(origin.url("/half.bin"))\nwould free 1.9 MiB (1 partial download)\n", "\(dry.stdout) \(dry.stderr)")
        #expect(PosixFile.list(dir + "/partial").contains { !$0.hasSuffix(".lock") })
        let pruned = try await runCLI(["prune", "--cache-dir", dir, "--json"])
        #expect(pruned.stdout.hasPrefix("[{") && pruned.stdout.contains("\"url\":\"\(origin.url("/half.bin"))\""), "\(pruned.stdout)")
        #expect(PosixFile.list(dir + "/partial").isEmpty)
        #expect(try await runCLI(["list", "--cache-dir", dir]).stdout.hasSuffix("total: 3 blobs, 58.6 KiB\n"))
        await origin.stop()
    }

    @Test func aUniqueDigestPrefixIsEnoughForPinAndRm() async throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let file = dir + "-f.bin"
        defer { unlink(file) }
        let bytes = testBytes(5000)
        try PosixFile.writeAtomically(file, bytes)
        let hex = BlobDigest.of(bytes).hex
        // --json on every command that prints data: one object (or array), slashes not escaped.
        let add = try await runCLI(["add", "--cache-dir", dir, file, "--json", "--url", "http://h/a/b.bin"])
        #expect(add.status == 0 && add.stdout.hasPrefix("{") && add.stdout.contains("\"sha256\":\"\(hex)\"") && add.stdout.contains("\"http://h/a/b.bin\""), "\(add.stdout)")
        let verify = try await runCLI(["verify", "--cache-dir", dir, "--json"])
        #expect(verify.stdout == "[{\"ok\":true,\"sha256\":\"\(hex)\"}]\n", "\(verify.stdout)")
        let unpin = try await runCLI(["unpin", "--cache-dir", dir, "--json", hex])
        #expect(unpin.stdout.hasPrefix("{") && unpin.stdout.contains("\"pinned\":false"), "\(unpin.stdout)")
        let pin = try await runCLI(["pin", "--cache-dir", dir, String(hex.prefix(7))])
        #expect(pin.status == 0 && pin.stdout == "pinned \(hex)\n", "\(pin.stderr)")
        let short = try await runCLI(["rm", "--cache-dir", dir, String(hex.prefix(3))])  // too short to be a prefix
        #expect(short.status == 2 && short.stderr.contains("not in the cache"))
        let rm = try await runCLI(["rm", "--cache-dir", dir, String(hex.prefix(12)).uppercased()])
        #expect(rm.status == 0 && rm.stdout.hasPrefix("removed \(hex)"), "\(rm.stderr)")
    }
}
