import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// The progress of `fetch` on stderr: one fitted line under a real terminal, plain lines when piped, nothing with
/// `--quiet`; stdout holds only the result; Ctrl-C without a node says how to resume.
@Suite(.serialized) struct CLIProgressTests {
    func tempDir() -> String { NSTemporaryDirectory() + "modelcache-progress-" + UUID().uuidString }

    /// The redrawn lines of a terminal transcript (each redraw starts with CR, erase line).
    func redraws(_ transcript: String) -> [String] {
        transcript.components(separatedBy: "\r\u{1B}[2K").dropFirst().map { $0.components(separatedBy: "\r\n")[0] }.filter { !$0.isEmpty }
    }

    @Test(arguments: [50, 120])
    func underARealTerminalTheLineFitsTheWidthAndNamesTheFile(_ columns: Int) async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/model.bin", testBytes(1_500_000))
        origin.inject(.trickle(bytesPerSecond: 600_000))
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        // `script` gives the command a pseudo-terminal of its own, `stty` its width.
        let r = try await runProcess("/usr/bin/script", ["-qec", "stty cols \(columns) rows 20; \"$B\" fetch --cache-dir \(dir) --connections 1 \(origin.url("/model.bin"))", "/dev/null"],
                                     environment: ["B": modelcacheBinary], timeout: .seconds(60))
        #expect(r.status == 0, "\(r.stdout)")
        let lines = redraws(r.stdout).dropLast()  // the last one is the summary, printed on the cleared line
        #expect(lines.count >= 3, "\(r.stdout)")
        for l in lines { #expect(l.count <= columns - 1, "\(columns) columns: \(l)") }
        #expect(lines.contains { $0.hasPrefix("model.bin  ") && $0.contains("%") && $0.contains("/s") }, "\(lines)")
        // No negative figure anywhere (a '-' is a bar's empty part or an unknown value, never a sign).
        let signed = lines.filter { l in zip(l, l.dropFirst()).contains { $0 == "-" && $1.isNumber } }
        #expect(signed.isEmpty, "\(signed)")
        if columns >= 120 { #expect(lines.contains { $0.contains("[#") && $0.contains("ETA ") && $0.hasSuffix("origin") }, "\(lines)") }
        // The summary, then the result.
        let blob = dir + "/blobs/sha256/" + BlobDigest.of(testBytes(1_500_000)).hex
        #expect(r.stdout.contains("model.bin: 1.4 MiB in "), "\(r.stdout)")
        #expect(r.stdout.contains("origin 1.4 MiB · from the LAN: 0%\r\n" + blob))
        await origin.stop()
    }

    @Test func aSilentOriginShowsWhatTheFetchWaitsForAndForHowLong() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/late.bin", testBytes(100_000))
        origin.inject(.silentHead(.seconds(3)))
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let r = try await runProcess("/usr/bin/script", ["-qec", "stty cols 80 rows 20; \"$B\" fetch --cache-dir \(dir) \(origin.url("/late.bin"))", "/dev/null"],
                                     environment: ["B": modelcacheBinary], timeout: .seconds(60))
        #expect(r.status == 0, "\(r.stdout)")
        let lines = redraws(r.stdout)
        #expect(lines.contains("late.bin  connecting to 127.0.0.1"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("late.bin  connecting to 127.0.0.1 · ") && $0.hasSuffix(" s") }, "\(lines)")
        await origin.stop()
    }

    @Test func anOriginThatStallsIsShownAsStalledNotAsAFallingRate() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/stall.bin", testBytes(1_000_000))
        origin.inject(.stallAfter(bytes: 300_000))
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let fetch = try startCLI(["fetch", "--cache-dir", dir, "--connections", "1", origin.url("/stall.bin")],
                                 environment: ["MODELCACHE_PROGRESS_SECONDS": "0.5"])
        for _ in 0..<200 where origin.bytesServed < 300_000 { try await Task.sleep(for: .milliseconds(25)) }
        try await Task.sleep(for: .seconds(5))
        let (status, text) = await fetch.stop(SIGINT)
        #expect(status == 130)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("modelcache: stall.bin: ") && $0.contains("%, no bytes for ") && $0.hasSuffix(" s, retrying") }, "\(text)")
        #expect(lines.last?.hasPrefix("modelcache: interrupted after ") == true, "\(text)")
        await origin.stop()
    }

    @Test func pipedStderrGetsPlainLinesAndStdoutOnlyThePath() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/m.bin", testBytes(1_000_000))
        origin.inject(.trickle(bytesPerSecond: 400_000))
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let r = try await runCLI(["fetch", "--cache-dir", dir, "--connections", "1", origin.url("/m.bin")],
                                 environment: ["MODELCACHE_PROGRESS_SECONDS": "0.5"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == dir + "/blobs/sha256/" + BlobDigest.of(testBytes(1_000_000)).hex + "\n")
        #expect(!r.stderr.contains("\u{1B}") && !r.stderr.contains("\r"), "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("modelcache: m.bin: ") && $0.contains("%, ") && $0.contains(" / 976.6 KiB") }.count >= 1, "\(lines)")
        #expect(lines.last?.hasPrefix("m.bin: 976.6 KiB in ") == true && lines.last?.hasSuffix("origin 976.6 KiB · from the LAN: 0%") == true, "\(lines)")
        // --quiet: nothing on stderr; a cache hit says so.
        let hit = try await runCLI(["fetch", "--cache-dir", dir, origin.url("/m.bin")])
        #expect(hit.stderr == "m.bin: 976.6 KiB, already in the cache\n")
        let quiet = try await runCLI(["fetch", "--cache-dir", dir, "--quiet", origin.url("/m.bin")])
        #expect(quiet.stderr.isEmpty && quiet.status == 0)
        await origin.stop()
    }

    @Test func ctrlCWithoutANodeSaysHowToResumeAndKeepsTheVerifiedChunks() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(3_000_000)
        origin.serve("/big.bin", bytes)
        origin.inject(.trickle(bytesPerSecond: 300_000))
        let dir = tempDir()
        defer { PosixFile.removeTree(dir) }
        let url = origin.url("/big.bin")
        let fetch = try startCLI(["fetch", "--cache-dir", dir, "--connections", "1", "--chunk-size", "65536", url])
        for _ in 0..<100 where origin.bytesServed < 500_000 { try await Task.sleep(for: .milliseconds(50)) }
        let (status, text) = await fetch.stop(SIGINT)
        #expect(status == 130)
        #expect(text.contains("modelcache: interrupted after ") && text.hasSuffix("resume with: modelcache fetch \(url)\n"), "\(text)")
        // The resume takes only what is missing.
        origin.clearFaults()
        origin.resetCounters()
        let again = try await runCLI(["fetch", "--cache-dir", dir, "--chunk-size", "65536", url])
        #expect(again.status == 0)
        #expect(origin.bytesServed < Int64(bytes.count) - 300_000, "served \(origin.bytesServed) again")
        await origin.stop()
    }
}
