import AsyncHTTPClient
import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// Help, suggestions, completions and the man page (issue 15).
struct CLIHelpTests {
    /// The subcommands `modelcache --help` lists.
    func commands() async throws -> [String] {
        let help = try await runCLI(["--help"]).stdout
        let section = help.components(separatedBy: "SUBCOMMANDS:").last ?? ""
        return section.split(separator: "\n").compactMap { line in
            line.hasPrefix("  ") && !line.hasPrefix("   ") ? line.split(separator: " ").first.map(String.init) : nil
        }.filter { $0 != "help" && $0.first?.isLowercase == true }
    }

    @Test func aMistypedCommandGetsASuggestionAndStatus64() async throws {
        let r = try await runCLI(["fecth", "http://h/x"])
        #expect(r.status == 64)
        #expect(r.stderr == "modelcache: error: unknown command 'fecth'. Did you mean 'fetch'? See 'modelcache --help' for the commands\n")
        let far = try await runCLI(["xyzzy"])
        #expect(far.status == 64 && far.stderr == "modelcache: error: unknown command 'xyzzy'. See 'modelcache --help' for the commands\n")
        let option = try await runCLI(["fetch", "--jsn", "http://h/x"])
        #expect(option.status == 64 && option.stderr.contains("Did you mean '--json'?"))
    }

    @Test func theManPageNamesEveryCommandAndCompletionsAreGenerated() async throws {
        let names = try await commands()
        #expect(names.contains("fetch") && names.contains("prune") && names.contains("peers"), "\(names)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let page = String(decoding: PosixFile.readAll(root.appendingPathComponent("packaging/modelcache.1").path) ?? [], as: UTF8.self)
        for n in names { #expect(page.contains("\n.It Em \(n)\n"), "packaging/modelcache.1 lacks '\(n)': run scripts/manual") }
        for shell in ["bash", "zsh", "fish"] {
            let script = try await runCLI(["--generate-completion-script", shell])
            #expect(script.status == 0 && script.stdout.contains("prune") && script.stdout.contains("--dry-run"), "\(shell)")
        }
    }

    @Test func helpShowsEachDefaultOnceAndHidesTestOnlyFlags() async throws {
        for c in try await commands() {
            let help = try await runCLI([c, "--help"]).stdout
            for option in help.components(separatedBy: "\n  -").dropFirst() {
                let words = option.lowercased().components(separatedBy: "default").count - 1
                #expect(words <= 1, "\(c): \(option)")
            }
        }
        let discover = try await runCLI(["discover", "--help"]).stdout
        #expect(discover.contains("--publish-port") && !discover.contains("--node-id") && !discover.contains("--bump-after"))
    }
}

/// `peers` through a node (issue 15): address, how found, blobs, state.
extension NodeProcessTests {
    @Test func peersListsAnUnreachableStaticPeerAsUnreachable() async throws {
        let dir = NSTemporaryDirectory() + "modelcache-peers-" + UUID().uuidString
        defer { PosixFile.removeTree(dir) }
        let node = try startServe(dir, extra: ["--peer", "127.0.0.1:1"])
        defer { killNow(node) }
        let http = HTTPClient.forModelCache()
        defer { Task { try? await http.shutdown() } }
        try await waitForNode(ControlClient(socketPath: dir + "/node.sock", http: http))
        var r = try await runCLI(["peers", "--cache-dir", dir])
        for _ in 0..<50 where !r.stdout.contains("unreachable") {
            try await Task.sleep(for: .milliseconds(100))
            r = try await runCLI(["peers", "--cache-dir", dir])
        }
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("NAME") == true && lines.first?.hasSuffix("FOUND   BLOBS  RECEIVED    SENT        STATE") == true, "\(r.stdout)")
        #expect(lines.count == 2 && lines[1].contains("127.0.0.1:1") && lines[1].contains("static") && lines[1].contains("unreachable: "), "\(r.stdout)")
        let json = try await runCLI(["peers", "--cache-dir", dir, "--json"])
        #expect(json.stdout.contains("\"state\":\"unreachable\"") && json.stdout.contains("\"address\":\"127.0.0.1:1\""), "\(json.stdout)")
    }
}
