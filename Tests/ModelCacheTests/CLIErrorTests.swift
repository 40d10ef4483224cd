import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Each error the CLI can meet: one line on stderr that says what failed and what to do, a non-zero exit,
/// and nothing left in the cache.
@Suite(.serialized) struct CLIErrorTests {
    func expectOneLineError(_ r: CLIResult, status: Int32, containing: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "exit status, stderr: \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("modelcache: error: "), sourceLocation: sourceLocation)
        #expect(r.stderr.contains(containing), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }

    func expectEmptyCache(_ dir: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(PosixFile.list(dir + "/blobs/sha256").isEmpty, sourceLocation: sourceLocation)
        #expect(PosixFile.list(dir + "/partial").isEmpty, sourceLocation: sourceLocation)
    }

    func tempDir() -> String { NSTemporaryDirectory() + "modelcache-cli-" + UUID().uuidString }

    @Test(arguments: [(404, "check the URL"), (403, "access rights"), (500, "retry later")])
    func originStatus(_ status: Int, _ advice: String) async throws {
        let origin = try await TestOrigin.start()
        origin.inject(.status(status))
        let dir = tempDir()
        let r = try await runCLI(["fetch", "--cache-dir", dir, origin.url("/missing")])
        expectOneLineError(r, status: 3, containing: "origin answered \(status)")
        #expect(r.stderr.contains(advice))
        expectEmptyCache(dir)
        await origin.stop()
        PosixFile.removeTree(dir)
    }

    @Test func connectionRefused() async throws {
        let dir = tempDir()
        // Port 1 on loopback: nothing listens there.
        let r = try await runCLI(["fetch", "--cache-dir", dir, "http://127.0.0.1:1/x"])
        expectOneLineError(r, status: 4, containing: "cannot reach the origin")
        expectEmptyCache(dir)
        PosixFile.removeTree(dir)
    }

    @Test(.enabled(if: isRoot, "needs root to create a network namespace without DNS"))
    func dnsFailure() async throws {
        let dir = tempDir()
        // In a fresh network namespace (loopback only, down) no resolver is reachable: the lookup fails at once
        // and no packet leaves the machine.
        let r = try await runCLI(["fetch", "--cache-dir", dir, "http://no-such-host.example/x"],
                                 prefix: ["/usr/bin/unshare", "-n"])
        expectOneLineError(r, status: 4, containing: "cannot reach the origin")
        expectEmptyCache(dir)
        PosixFile.removeTree(dir)
    }

    @Test func digestMismatch() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/f", testBytes(100_000))
        let dir = tempDir()
        let wrong = String(repeating: "ab", count: 32)
        let r = try await runCLI(["fetch", "--cache-dir", dir, "--sha256", wrong, origin.url("/f")])
        expectOneLineError(r, status: 5, containing: "sha256 mismatch: expected \(wrong), got \(BlobDigest.of(testBytes(100_000)).hex)")
        expectEmptyCache(dir)
        await origin.stop()
        PosixFile.removeTree(dir)
    }

    @Test(arguments: ["not a url", "ftp://example.org/x", "http://", "/local/path"])
    func malformedURL(_ url: String) async throws {
        let dir = tempDir()
        let r = try await runCLI(["fetch", "--cache-dir", dir, url])
        expectOneLineError(r, status: 64, containing: "malformed URL")
        PosixFile.removeTree(dir)
    }

    @Test func malformedDigest() async throws {
        let dir = tempDir()
        let r = try await runCLI(["fetch", "--cache-dir", dir, "--sha256", "xyz", "http://127.0.0.1:1/x"])
        expectOneLineError(r, status: 64, containing: "malformed sha256 'xyz'")
        PosixFile.removeTree(dir)
    }

    @Test(.enabled(if: isRoot, "needs root to mount a small tmpfs"))
    func diskFull() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/big", testBytes(3_000_000))
        let dir = tempDir()
        try PosixFile.makeDirectories(dir)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]
        try mount.run(); mount.waitUntilExit()
        try #require(mount.terminationStatus == 0)
        defer {
            let u = Process()
            u.executableURL = URL(fileURLWithPath: "/bin/umount")
            u.arguments = [dir]
            try? u.run(); u.waitUntilExit()
            PosixFile.removeTree(dir)
        }
        let r = try await runCLI(["fetch", "--cache-dir", dir, origin.url("/big")])
        expectOneLineError(r, status: 6, containing: "disk full")
        expectEmptyCache(dir)
        #expect(origin.gets == 0)  // preallocation failed before any byte was downloaded
        await origin.stop()
    }
}
