import AsyncHTTPClient
import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// The README's exit-status table is one contract for both modes: each failure gives the same line and the same
/// status whether the CLI runs the work itself (no node) or a node runs it.
extension NodeProcessTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var status: Int32
        var args: @Sendable (_ origin: TestOrigin, _ dir: String, _ prefix: String) -> [String]
        var description: String { name }
    }

    static let bothModes: [Case] = [
        Case(name: "2 not in the cache (rm)", status: 2) { _, dir, _ in ["rm", "--cache-dir", dir, String(repeating: "ab", count: 32)] },
        Case(name: "2 not in the cache (pin)", status: 2) { _, dir, _ in ["pin", "--cache-dir", dir, "http://h/none"] },
        Case(name: "3 origin status", status: 3) { o, dir, _ in ["fetch", "--cache-dir", dir, o.url("/missing")] },
        Case(name: "4 origin unreachable", status: 4) { _, dir, _ in ["fetch", "--cache-dir", dir, "http://127.0.0.1:1/x.bin"] },
        Case(name: "5 digest mismatch", status: 5) { o, dir, _ in ["fetch", "--cache-dir", dir, "--sha256", String(repeating: "ab", count: 32), o.url("/f.bin")] },
        Case(name: "64 malformed URL", status: 64) { _, dir, _ in ["fetch", "--cache-dir", dir, "ftp://h/x"] },
        Case(name: "64 malformed digest", status: 64) { _, dir, _ in ["fetch", "--cache-dir", dir, "--sha256", "xyz", "http://127.0.0.1:1/x"] },
        Case(name: "64 ambiguous digest prefix", status: 64) { _, dir, prefix in ["rm", "--cache-dir", dir, prefix] },
    ]

    @Test func everyExitStatusIsTheSameWithAndWithoutANode() async throws {
        let origin = try await TestOrigin.start()
        origin.serve("/f.bin", testBytes(50_000))
        let dir = NSTemporaryDirectory() + "modelcache-modes-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let prefix = try seedTwoBlobsSharingAPrefix(dir)
        var alone: [String: CLIResult] = [:]
        for c in Self.bothModes {
            alone[c.name] = try await runCLI(c.args(origin, dir, prefix) + (c.args(origin, dir, prefix).first == "fetch" ? ["--no-node"] : []))
        }
        let node = try startServe(dir)
        defer { killNow(node) }
        let http = HTTPClient.forModelCache()
        defer { Task { try? await http.shutdown() } }
        try await waitForNode(ControlClient(socketPath: dir + "/node.sock", http: http))
        for c in Self.bothModes {
            let through = try await runCLI(c.args(origin, dir, prefix), timeout: .seconds(60))
            let a = try #require(alone[c.name])
            #expect(a.status == c.status && through.status == c.status, "\(c): alone \(a.status) \(a.stderr) through \(through.status) \(through.stderr)")
            let lastAlone = a.stderr.split(separator: "\n").last.map(String.init) ?? ""
            let lastThrough = through.stderr.split(separator: "\n").last.map(String.init) ?? ""
            #expect(lastAlone.hasPrefix("modelcache: error: ") && lastAlone == lastThrough, "\(c):\n  \(lastAlone)\n  \(lastThrough)")
        }
        await origin.stop()
    }

    /// Imports two small files whose digests start with the same 4 hex digits (a few hundred tries find a pair);
    /// returns those digits.
    func seedTwoBlobsSharingAPrefix(_ dir: String) throws -> String {
        var seen: [String: [UInt8]] = [:]
        for i in 0..<20_000 {
            let bytes = Array("blob \(i)".utf8)
            let prefix = String(BlobDigest.of(bytes).hex.prefix(4))
            guard let other = seen[prefix] else { seen[prefix] = bytes; continue }
            let store = try Store(root: dir)
            for (n, b) in [other, bytes].enumerated() {
                let file = dir + "-seed-\(n)"
                try Data(b).write(to: URL(fileURLWithPath: file))
                defer { unlink(file) }
                _ = try store.importFile(file, url: nil, expected: nil)
            }
            return prefix
        }
        throw ModelCacheError.invalidArgument("no two digests share 4 hex digits among 20000 small blobs")
    }

    @Test func jobCommandsWithoutANodeSaySoWithTheirOwnStatus() async throws {
        let dir = NSTemporaryDirectory() + "modelcache-nonode-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        for args in [["jobs"], ["jobs", "clear"], ["status", "abc"], ["wait", "abc"], ["abort", "abc"], ["peers"]] {
            let r = try await runCLI(args + ["--cache-dir", dir])
            #expect(r.status == 7, "\(args): \(r.stderr)")
            #expect(r.stderr == "modelcache: error: no node serves \(dir) (jobs and peers live in a node): start one with 'modelcache serve'; 'modelcache fetch URL' works without one\n")
        }
    }
}

/// Through a node: the same progress line under a terminal, and Ctrl-C detaches with status 130.
extension NodeProcessTests {
    @Test func throughANodeTheTerminalLineNamesTheFileAndCtrlCDetaches() async throws {
        let origin = try await TestOrigin.start()
        let bytes = testBytes(2_000_000)
        origin.serve("/node.bin", bytes)
        origin.serve("/slow.bin", testBytes(3_000_000, seed: 5))
        origin.inject(.trickle(bytesPerSecond: 500_000))
        try await withServe { dir, _, control in
            let r = try await runProcess("/usr/bin/script", ["-qec", "stty cols 100 rows 20; \"$B\" fetch --cache-dir \(dir) \(origin.url("/node.bin"))", "/dev/null"],
                                         environment: ["B": modelcacheBinary], timeout: .seconds(60))
            #expect(r.status == 0, "\(r.stdout)")
            let lines = r.stdout.components(separatedBy: "\r\u{1B}[2K").dropFirst().map { $0.components(separatedBy: "\r\n")[0] }
            #expect(lines.contains { $0.hasPrefix("node.bin  [") && $0.contains("%") && $0.hasSuffix("origin") && $0.count <= 99 }, "\(lines)")
            #expect(r.stdout.contains("node.bin: 1.9 MiB in ") && r.stdout.contains("from the LAN: 0%\r\n" + dir + "/blobs/sha256/" + BlobDigest.of(bytes).hex))

            let fetch = try startCLI(["fetch", "--cache-dir", dir, origin.url("/slow.bin")])
            var id = ""
            for _ in 0..<200 {
                if let j = try await control.jobs().first(where: { $0.requests[0].url.hasSuffix("/slow.bin") && $0.downloaded > 0 }) { id = j.id; break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let (status, text) = await fetch.stop(SIGINT)
            #expect(status == 130)
            #expect(text.hasSuffix("modelcache: detached; job \(id) goes on in the node. Follow it with: modelcache wait \(id)\n"), "\(text)")
            let done = try await control.follow(id)
            #expect(done.state == .success)
        }
        await origin.stop()
    }
}
