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

    /// `add` of a folder: it opens and has a size, and its read fails. One line and exit 74, not a crash (a build
    /// whose hashing thread kept the failed read's buffer trapped here with SIGILL).
    @Test func addingAFolderIsAnIOError() async throws {
        let dir = tempDir()
        let folder = dir + "-folder"
        try PosixFile.makeDirectories(folder)
        defer { PosixFile.removeTree(dir); PosixFile.removeTree(folder) }
        let r = try await runCLI(["add", folder, "--url", "http://127.0.0.1:9/f.bin", "--cache-dir", dir])
        expectOneLineError(r, status: 74, containing: "I/O error at \(folder)")
        expectEmptyCache(dir)
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
        try mount.run(); await waitForExit(mount)
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

/// The cache folder is the tool's own (issue 17): refusals, a missing cache, a disk that fills at commit.
extension CLIErrorTests {
    /// Runs `script` (sh) in a new mount namespace whose /tmp is a fresh 16 MiB tmpfs, so a command that would wipe
    /// /tmp could only wipe that one. `$B` is the modelcache binary, run relative to the shell's working folder (its
    /// own folder, entered before the mount), so a build under /tmp stays reachable behind the new tmpfs.
    func inPrivateTmp(_ script: String) async throws -> CLIResult {
        let binary = URL(fileURLWithPath: modelcacheBinary)
        return try await runProcess("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c",
                                                         "cd \"$BDIR\" || exit 98\nmount -t tmpfs -o size=16m tmpfs /tmp || exit 99\n" + script],
                                    environment: ["B": "./" + binary.lastPathComponent,
                                                  "BDIR": binary.deletingLastPathComponent().path])
    }

    @Test(.enabled(if: isRoot, "needs root for a private mount namespace with its own /tmp"))
    func emptyOrSystemCacheDirIsRefusedAndTmpSurvives() async throws {
        let r = try await inPrivateTmp("""
            echo keep > /tmp/sentinel
            "$B" list --cache-dir ""; echo "list-empty=$?"
            MODELCACHE_DIR= "$B" fetch http://127.0.0.1:1/x; echo "fetch-env-empty=$?"
            "$B" token --cache-dir ""; echo "token-empty=$?"
            "$B" list --cache-dir /; echo "list-root=$?"
            "$B" fetch --cache-dir / http://127.0.0.1:1/x; echo "fetch-root=$?"
            "$B" list --cache-dir /tmp; echo "list-tmp=$?"
            cat /tmp/sentinel
            ls /tmp
            for f in /blobs /partial /index.sqlite /CACHEDIR.TAG; do test -e "$f" && echo "created $f"; done
            true
            """)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        for line in ["list-empty=73", "fetch-env-empty=73", "token-empty=73", "list-root=73", "fetch-root=73", "list-tmp=73"] {
            #expect(r.stdout.contains(line), "stdout: \(r.stdout)")
        }
        #expect(r.stdout.contains("keep\nsentinel\n"), "stdout: \(r.stdout)")  // the sentinel survived, nothing was added to /tmp
        #expect(!r.stdout.contains("created"), "stdout: \(r.stdout)")
        #expect(r.stderr.contains("empty string") && r.stderr.contains("/ is not empty and has no CACHEDIR.TAG"))
    }

    @Test func verifyOnAMissingCacheIsAnErrorAndCreatesNothing() async throws {
        let dir = tempDir()
        let r = try await runCLI(["verify", "--cache-dir", dir])
        expectOneLineError(r, status: 66, containing: "no cache at \(dir)")
        #expect(!PosixFile.exists(dir))
        let rm = try await runCLI(["rm", "--cache-dir", dir, "http://h/x"])
        expectOneLineError(rm, status: 66, containing: "no cache at \(dir)")
    }

    /// Runs `command` (sh, `$C` the cache) on a small tmpfs filled so that only 256 KiB plus `margin` bytes are free,
    /// for margins that make it run out of space at each step from the first write to the index row. Each run either
    /// succeeds or says "disk full" in one line, and never leaves a file in blobs/, tmp/ or partial/. Returns where
    /// each run ended: "ok", "full-at-index" (the commit itself) or "full-before-commit".
    func diskFullSweep(_ command: String) async throws -> [String] {
        var outcomes: [String] = []
        for margin in stride(from: 32_768, through: 163_840, by: 4096) {
            let r = try await runProcess("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c", """
                D=$(mktemp -d) && mount -t tmpfs -o size=2m tmpfs "$D" || exit 99
                C="$D/c"
                "$B" list --cache-dir "$C" >/dev/null
                avail=$(df --output=avail -B1 "$D" | tail -1)
                head -c $((avail - 262144 - \(margin))) /dev/zero > "$D/filler"
                \(command); echo "rc=$?"
                echo "blobs=$(ls "$C/blobs/sha256" | wc -l) tmp=$(ls -A "$C/tmp" | wc -l) partial=$(ls -A "$C/partial" | wc -l)"
                umount "$D"; rmdir "$D"
                """], environment: ["B": modelcacheBinary])
            if r.stdout.contains("rc=0") {
                #expect(r.stdout.contains("blobs=1 tmp=0 partial=0"), "margin \(margin): \(r.stdout)")
                outcomes.append("ok")
            } else {
                #expect(r.stdout.contains("rc=6"), "margin \(margin): \(r.stdout) \(r.stderr)")
                #expect(r.stderr.hasPrefix("modelcache: error: disk full at ") && r.stderr.split(separator: "\n").count == 1,
                        "margin \(margin): \(r.stderr)")
                #expect(r.stdout.contains("blobs=0 tmp=0 partial=0"), "margin \(margin): \(r.stdout)")
                outcomes.append(r.stderr.contains("index.sqlite") ? "full-at-index" : "full-before-commit")
            }
        }
        return outcomes
    }

    @Test(.enabled(if: isRoot, "needs root for a private mount namespace with a small tmpfs"))
    func diskFullDuringAnImportsCommitIsOneLineAndLeavesNoStrayFiles() async throws {
        let src = NSTemporaryDirectory() + "modelcache-src-" + UUID().uuidString
        defer { unlink(src) }
        try Data(testBytes(262_144)).write(to: URL(fileURLWithPath: src))
        let outcomes = try await diskFullSweep("\"$B\" add --cache-dir \"$C\" \"\(src)\" --url http://h/x.bin")
        // The sweep did reach the commit itself (the index row), not only the copy.
        #expect(outcomes.contains("full-at-index") && outcomes.contains("ok"), "\(outcomes)")
    }

    @Test(.enabled(if: isRoot, "needs root for a private mount namespace with a small tmpfs"))
    func diskFullDuringAFetchsCommitIsOneLineAndLeavesNoPartialOrBlob() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/x.bin", testBytes(262_144))
        let outcomes = try await diskFullSweep("\"$B\" fetch --cache-dir \"$C\" \(origin.url("/x.bin"))")
        #expect(outcomes.contains("full-at-index") && outcomes.contains("ok"), "\(outcomes)")
        await origin.stop()
    }
}

/// A cache this user cannot write (issue 15): one line with what to do, exit 77, not "SQLite error 14".
extension CLIErrorTests {
    @Test(.enabled(if: isRoot, "needs root for a read-only bind mount in a private mount namespace"))
    func aReadOnlyCacheSaysSoWithItsOwnStatus() async throws {
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let made = try await runCLI(["list", "--cache-dir", dir])
        #expect(made.status == 0)
        unlink(dir + "/index.sqlite-wal")
        unlink(dir + "/index.sqlite-shm")
        let r = try await runProcess("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c", """
            mount --bind "$C" "$C" && mount -o remount,bind,ro "$C" || exit 99
            "$B" list --cache-dir "$C"; echo "list=$?"
            "$B" fetch --no-node --cache-dir "$C" http://127.0.0.1:1/x; echo "fetch=$?"
            """], environment: ["B": modelcacheBinary, "C": dir])
        #expect(r.stdout.contains("list=77") && r.stdout.contains("fetch=77"), "\(r.stdout) \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 2 && lines.allSatisfy { $0 == "modelcache: error: the cache at \(dir) is read-only for this user (uid 0): run as the user who owns it, use its node (modelcache serve), or pass --cache-dir a folder you can write" }, "\(r.stderr)")
    }
}
