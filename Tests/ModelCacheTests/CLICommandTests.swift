import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

@Suite(.serialized) struct CLICommandTests {
    func tempDir() -> String { NSTemporaryDirectory() + "modelcache-cli-" + UUID().uuidString }

    @Test func sigkillMidDownloadResumesWithoutRefetchingVerifiedChunks() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(2 * 1024 * 1024)
        origin.serve("/weights.bin", bytes)
        origin.inject(.trickle(bytesPerSecond: 1_500_000))
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }

        let child = Process()
        child.executableURL = URL(fileURLWithPath: modelcacheBinary)
        child.arguments = ["fetch", "--cache-dir", dir, "--chunk-size", "65536", "--connections", "2", origin.url("/weights.bin")]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        // Wait (bounded) until the child has journalled some verified chunks, then kill it hard.
        var journalled = 0
        for _ in 0..<200 where journalled < 6 {
            try await Task.sleep(for: .milliseconds(25))
            journalled = journalledChunks(in: dir)
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)
        try #require(journalled >= 6, "the child never journalled chunks")
        #expect(PosixFile.list(dir + "/blobs/sha256").isEmpty)  // killed: no blob yet, and certainly no wrong one

        // Let the origin notice the dead connections (its trickling writers stop) before counting afresh.
        try await origin.waitUntilQuiet()
        origin.clearFaults()
        origin.resetCounters()
        let r = try await runCLI(["fetch", "--cache-dir", dir, "--chunk-size", "65536", "--json", origin.url("/weights.bin")])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let result = try JSONDecoder().decode(FetchResult.self, from: Data(r.lastLine.utf8))
        #expect(result.sha256 == BlobDigest.of(bytes))
        #expect(result.resumedBytes >= Int64(journalled) * 65536)
        // The origin served exactly the chunks that were not verified before the kill.
        #expect(origin.bytesServed == Int64(bytes.count) - result.resumedBytes)
        #expect(PosixFile.readAll(result.path) == bytes)
        #expect(PosixFile.list(dir + "/partial").isEmpty)
        await origin.stop()
    }

    @Test func fetchPrintsPathLastAndPlacesOutput() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(300_000)
        origin.serve("/f", bytes)
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let out = dir + "-out.bin"
        defer { unlink(out) }
        let r = try await runCLI(["fetch", "--cache-dir", dir, "--output", out, origin.url("/f")])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.lastLine == dir + "/blobs/sha256/" + BlobDigest.of(bytes).hex)
        #expect(r.stderr.isEmpty)  // not a TTY: no progress bar
        #expect(PosixFile.readAll(out) == bytes)
        // Again: a cache hit, no request at all.
        origin.resetCounters()
        let again = try await runCLI(["fetch", "--cache-dir", dir, "--json", origin.url("/f")])
        #expect(again.status == 0)
        #expect(again.stdout.contains("\"cached\":true"))
        #expect(origin.requests == 0)
        await origin.stop()
    }

    @Test func environmentVariableChoosesTheCacheDirectory() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/f", testBytes(1000))
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let r = try await runCLI(["fetch", origin.url("/f")], environment: ["MODELCACHE_DIR": dir])
        #expect(r.status == 0)
        #expect(r.lastLine.hasPrefix(dir + "/blobs/sha256/"))
        await origin.stop()
    }

    @Test func addListRemoveVerify() async throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let file = dir + "-usb.bin"
        defer { unlink(file) }
        let bytes = testBytes(150_000)
        try PosixFile.writeAtomically(file, bytes)
        let digest = BlobDigest.of(bytes)

        let add = try await runCLI(["add", "--cache-dir", dir, file, "--url", "http://example.invalid/m.bin"])
        #expect(add.status == 0, "stderr: \(add.stderr)")
        #expect(add.lastLine == dir + "/blobs/sha256/" + digest.hex)

        let list = try await runCLI(["list", "--cache-dir", dir, "--json"])
        let records = try JSONDecoder.iso.decode([BlobRecord].self, from: Data(list.stdout.utf8))
        #expect(records.map(\.sha256) == [digest])
        #expect(records.first?.urls == ["http://example.invalid/m.bin"])
        #expect(records.first?.digestSource == .import && list.stdout.contains("\"digestSource\":\"import\""))

        // A fetch of the imported URL is a hit without touching the (unreachable) origin.
        let hit = try await runCLI(["fetch", "--cache-dir", dir, "http://example.invalid/m.bin"])
        #expect(hit.status == 0 && hit.lastLine.hasSuffix(digest.hex))
        // Where the digest came from: the owner's import (protocol §8), in fetch --json and in list's column.
        #expect(try await runCLI(["fetch", "--cache-dir", dir, "--json", "http://example.invalid/m.bin"]).stdout.contains("\"digestSource\":\"import\""))
        #expect(try await runCLI(["list", "--cache-dir", dir]).stdout.contains("\(digest.hex)  \(ProgressText.bytes(Int64(bytes.count)))  import"))

        #expect(try await runCLI(["verify", "--cache-dir", dir]).stdout.contains("1 ok, 0 bad"))
        // Corrupt the blob behind the store's back: verify reports it and removes it.
        let path = dir + "/blobs/sha256/" + digest.hex
        chmod(path, 0o644)
        var bad = bytes
        bad[77] ^= 1
        try PosixFile.writeAtomically(path, bad)
        let verify = try await runCLI(["verify", "--cache-dir", dir])
        #expect(verify.status == 5)
        #expect(verify.stdout.contains("BAD \(digest.hex)"))
        #expect(try await runCLI(["list", "--cache-dir", dir, "--json"]).stdout == "[]\n")

        _ = try await runCLI(["add", "--cache-dir", dir, file, "--url", "http://example.invalid/m.bin"])
        let rm = try await runCLI(["rm", "--cache-dir", dir, "http://example.invalid/m.bin"])
        #expect(rm.status == 0 && rm.stdout.contains("removed \(digest.hex)"))
        #expect(!PosixFile.exists(path))
        let rmAgain = try await runCLI(["rm", "--cache-dir", dir, digest.hex])
        #expect(rmAgain.status == 2 && rmAgain.stderr.contains("not in the cache"))
    }

    @Test func addRejectsAWrongExpectedDigest() async throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let file = dir + "-x.bin"
        defer { unlink(file) }
        try PosixFile.writeAtomically(file, testBytes(1000))
        let r = try await runCLI(["add", "--cache-dir", dir, file, "--sha256", String(repeating: "0", count: 64)])
        #expect(r.status == 5 && r.stderr.contains("sha256 mismatch"))
        #expect(PosixFile.list(dir + "/blobs/sha256").isEmpty)
    }
}

extension JSONDecoder {
    static var iso: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }
}
