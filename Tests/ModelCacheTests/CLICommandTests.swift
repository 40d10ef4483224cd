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
        await stopProcess(child, SIGKILL)
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
        // Not a terminal: no bar, no control characters; the summary line only (a fast fetch has no periodic line).
        #expect(!r.stderr.contains("\u{1B}") && !r.stderr.contains("\r") && r.stderr.hasPrefix("f: 293.0 KiB in "), "\(r.stderr)")
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
        let listed = try await runCLI(["list", "--cache-dir", dir]).stdout
        #expect(listed.contains("\(digest.hex.prefix(12))  \(ProgressText.bytes(Int64(bytes.count)))") && listed.contains("  import         http://example.invalid/m.bin"), "\(listed)")

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

/// The store's bytes stay the store's (issue 17): `-o` copies, `--link` links read-only, concurrent processes share.
extension CLICommandTests {
    func inode(_ path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
    }

    func overwrite(_ path: String, with bytes: [UInt8]) throws {
        chmod(path, 0o644)
        let f = try PosixFile(path: path, flags: O_WRONLY)
        try bytes.withUnsafeBytes { try f.write($0, at: 0) }
    }

    @Test func fetchOutputIsACopySoWritingItLeavesTheCachedBlobIntact() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(300_000)
        origin.serve("/m.bin", bytes)
        let dir = tempDir()
        defer { PosixFile.removeTree(dir); PosixFile.removeTree(dir + "-out") }
        let out = dir + "-out/m.bin"
        let r = try await runCLI(["fetch", "--cache-dir", dir, "-o", out, origin.url("/m.bin")])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(inode(out) != nil && inode(out) != inode(r.lastLine))
        try overwrite(out, with: [UInt8](repeating: 0x58, count: 1000))
        let again = try await runCLI(["fetch", "--cache-dir", dir, "--json", origin.url("/m.bin")])
        #expect(again.stdout.contains("\"cached\":true"))
        #expect(PosixFile.readAll(r.lastLine) == bytes)
        await origin.stop()
    }

    @Test func fetchOutputToAFolderUsesTheURLsFileNameAndCreatesMissingFolders() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(5000)
        origin.serve("/org/model/resolve/main/config.json", bytes)
        let dir = tempDir()
        defer { PosixFile.removeTree(dir); PosixFile.removeTree(dir + "-out") }
        let r = try await runCLI(["fetch", "--cache-dir", dir, "-o", dir + "-out/a/b/", origin.url("/org/model/resolve/main/config.json?x=1")])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(PosixFile.readAll(dir + "-out/a/b/config.json") == bytes)
        // An existing folder given without the slash gets the same treatment.
        let again = try await runCLI(["fetch", "--cache-dir", dir, "-o", dir + "-out/a", origin.url("/org/model/resolve/main/config.json?x=1")])
        #expect(again.status == 0, "stderr: \(again.stderr)")
        #expect(PosixFile.readAll(dir + "-out/a/config.json") == bytes)
        #expect(PosixFile.list(dir + "-out/a").sorted() == ["b", "config.json"])  // no temporary left behind
        await origin.stop()
    }

    @Test func fetchLinkGivesTheReadOnlyBlobAndAWriteThroughItIsNeverReturnedAsAHit() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(300_000)
        origin.serve("/m.bin", bytes)
        let dir = tempDir()
        defer { PosixFile.removeTree(dir); unlink(dir + "-link.bin") }
        let r = try await runCLI(["fetch", "--cache-dir", dir, "--link", "-o", dir + "-link.bin", origin.url("/m.bin")])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(inode(dir + "-link.bin") == inode(r.lastLine))
        var st = stat()
        #expect(stat(r.lastLine, &st) == 0 && st.st_mode & 0o777 == 0o444)
        // A careless user makes the link writable and changes it (same size): the cache notices and fetches again.
        try overwrite(dir + "-link.bin", with: [UInt8](repeating: 0x58, count: 1000))
        origin.resetCounters()
        let again = try await runCLI(["fetch", "--cache-dir", dir, "--json", origin.url("/m.bin")])
        #expect(again.status == 0, "stderr: \(again.stderr)")
        let result = try JSONDecoder().decode(FetchResult.self, from: Data(again.lastLine.utf8))
        #expect(!result.cached)
        #expect(result.sha256 == BlobDigest.of(bytes))
        #expect(PosixFile.readAll(result.path) == bytes)
        #expect(origin.bytesServed == Int64(bytes.count))
        await origin.stop()
    }

    @Test func tenConcurrentFetchesOfOneURLWithoutANodeShareOneDownloadAndAllSucceed() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(2_000_000)
        origin.serve("/w.bin", bytes)
        origin.inject(.trickle(bytesPerSecond: 4_000_000))
        let dir = tempDir()
        defer { PosixFile.removeTree(dir); PosixFile.removeTree(dir + "-out") }
        try PosixFile.makeDirectories(dir + "-out")
        // Ten processes at once, their output in files (runCLI's blocking pipe readers would starve the in-process origin).
        var children: [Process] = []
        for i in 0..<10 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: modelcacheBinary)
            p.arguments = ["fetch", "--cache-dir", dir, origin.url("/w.bin")]
            FileManager.default.createFile(atPath: dir + "-out/\(i).out", contents: nil)
            FileManager.default.createFile(atPath: dir + "-out/\(i).err", contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: dir + "-out/\(i).out")
            p.standardError = FileHandle(forWritingAtPath: dir + "-out/\(i).err")
            try p.run()
            children.append(p)
        }
        for _ in 0..<1500 where children.contains(where: \.isRunning) { try await Task.sleep(for: .milliseconds(20)) }
        for p in children where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        let want = dir + "/blobs/sha256/" + BlobDigest.of(bytes).hex + "\n"
        for (i, p) in children.enumerated() {
            await waitForExit(p)
            let err = String(decoding: PosixFile.readAll(dir + "-out/\(i).err") ?? [], as: UTF8.self)
            #expect(p.terminationStatus == 0, "stderr: \(err)")
            #expect(PosixFile.readAll(dir + "-out/\(i).out") == Array(want.utf8))
        }
        #expect(origin.bytesServed == Int64(bytes.count))  // one download, not ten
        #expect(PosixFile.list(dir + "/partial").isEmpty)
        await origin.stop()
    }

    @Test func listDuringAddDoesNotMakeTheImportFail() async throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir); unlink(dir + "-big.bin") }
        let bytes = [UInt8](repeating: 7, count: 48 << 20)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "-big.bin"))
        _ = try await runCLI(["list", "--cache-dir", dir])
        let add = Task { try await runCLI(["add", "--cache-dir", dir, dir + "-big.bin", "--url", "http://h/big.bin"], timeout: .seconds(120)) }
        // Readers open the store again and again while the import copies into tmp/.
        var lists = 0
        for _ in 0..<200 {
            let l = try await runCLI(["list", "--cache-dir", dir])
            #expect(l.status == 0, "stderr: \(l.stderr)")
            lists += 1
            if !PosixFile.list(dir + "/tmp").isEmpty || lists >= 20 { break }
        }
        let r = try await add.value
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.lastLine == dir + "/blobs/sha256/" + BlobDigest.of(bytes).hex)
        #expect(PosixFile.list(dir + "/tmp").isEmpty)
    }

    @Test func aCommandThatChangesTheCacheRemovesOnlyItsOwnTemporaries() async throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir); unlink(dir + "-f") }
        _ = try await runCLI(["list", "--cache-dir", dir])
        try Data([1]).write(to: URL(fileURLWithPath: dir + "/tmp/import-left-by-a-crash"))
        try Data([2]).write(to: URL(fileURLWithPath: dir + "/tmp/someone-elses"))
        try Data([3]).write(to: URL(fileURLWithPath: dir + "-f"))
        let r = try await runCLI(["add", "--cache-dir", dir, dir + "-f"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(PosixFile.list(dir + "/tmp") == ["someone-elses"])
    }

    @Test func everyCommandRefusesANonEmptyFolderWithoutTheTagAndLeavesItUntouched() async throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        try PosixFile.makeDirectories(dir + "/tmp")
        try Data([1]).write(to: URL(fileURLWithPath: dir + "/tmp/precious"))
        try Data([2]).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        for args in [["list"], ["token"], ["fetch", "http://127.0.0.1:1/x"], ["add", dir + "/notes.txt"], ["verify"],
                     ["serve", "--listen", "127.0.0.1:0", "--no-mdns"]] {
            let r = try await runCLI(args + ["--cache-dir", dir], timeout: .seconds(20))
            #expect(r.status == 73, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(dir) && r.stderr.contains("CACHEDIR.TAG") && r.stderr.split(separator: "\n").count == 1)
        }
        #expect(PosixFile.list(dir) == ["notes.txt", "tmp"])
        #expect(PosixFile.list(dir + "/tmp") == ["precious"])
    }

    @Test func withoutANodeAChangingCommandWaitsForTheCacheLockThenRuns() async throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir); unlink(dir + "-f") }
        _ = try await runCLI(["list", "--cache-dir", dir])
        let bytes = testBytes(10_000)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "-f"))
        var held: FileLock? = try #require(try CacheLock.tryAcquire(root: dir, command: "verify"))
        let add = Task { try await runCLI(["add", "--cache-dir", dir, dir + "-f"], timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(800))
        #expect(PosixFile.list(dir + "/blobs/sha256").isEmpty)  // still waiting for the lock
        held = nil  // released
        let r = try await add.value
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(PosixFile.list(dir + "/blobs/sha256") == [BlobDigest.of(bytes).hex])
        #expect(CacheLock.holder(root: dir)?.command == "add")
        _ = held
    }
}
