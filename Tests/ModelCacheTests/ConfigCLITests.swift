import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
@testable import ModelCache
import ModelCacheCore

/// `modelcache config` and the config file as the real binary reads them (issue 13 §2). Every run names its own
/// file (MODELCACHE_CONFIG) and an empty XDG_CONFIG_HOME, so no file of this machine is read.
@Suite(.serialized) struct ConfigCLITests {
    let dir = NSTemporaryDirectory() + "modelcache-config-" + UUID().uuidString

    init() throws {
        try PosixFile.makeDirectories(dir + "/xdg")
    }

    func write(_ text: String, name: String = "config.toml") throws -> String {
        let path = dir + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func run(_ args: [String], config: String?, environment: [String: String] = [:], timeout: Duration = .seconds(30)) async throws -> CLIResult {
        var env = ["XDG_CONFIG_HOME": dir + "/xdg", "SWIFT_BACKTRACE": "enable=no"]
        if let config { env["MODELCACHE_CONFIG"] = config }
        for (k, v) in environment { env[k] = v }
        return try await runCLI(args, environment: env, timeout: timeout)
    }

    func expectOneLineConfigError(_ r: CLIResult, containing: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 78, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("modelcache: error: "), sourceLocation: sourceLocation)
        #expect(r.stderr.contains(containing), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test func configPrintsEveryValueWithItsSource() async throws {
        defer { PosixFile.removeTree(dir) }
        let file = try write("# a node\nmax-size = \"200G\"\nname = \"from-file\"\ncache-dir = \"\(dir)/cache\"\n")
        let r = try await run(["config", "--max-connections", "99", "--no-mdns"], config: file, environment: ["MODELCACHE_IDLE_TIMEOUT": "45"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "# config file: \(file)")
        #expect(lines.count == 1 + SettingSpec.all.count, "every setting once: \(r.stdout)")
        #expect(lines.contains("max-size               = 214748364800  # \(file):2"))
        #expect(lines.contains("name                   = \"from-file\"  # \(file):3"))
        #expect(lines.contains("cache-dir              = \"\(dir)/cache\"  # \(file):4"))
        #expect(lines.contains("idle-timeout           = 45  # $MODELCACHE_IDLE_TIMEOUT"))
        #expect(lines.contains("max-connections        = 99  # --max-connections"))
        #expect(lines.contains("mdns                   = false  # --no-mdns"))
        #expect(lines.contains("listen                 = \"0.0.0.0:7070\"  # default"))
        #expect(lines.contains("max-origin-rate        = # (none: no limit)  # default"))
        #expect(!PosixFile.exists(dir + "/cache"), "config creates no cache")
    }

    @Test func configJSONNamesSourcesAndLines() async throws {
        defer { PosixFile.removeTree(dir) }
        let file = try write("\n\nmdns = false\npeers = [\"192.168.1.20:7070\"]\n")
        let r = try await run(["config", "--json", "--cache-dir", dir + "/c"], config: file)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(object?["file"] as? String == file)
        let settings = Dictionary(uniqueKeysWithValues: (object?["settings"] as? [[String: Any]] ?? []).compactMap { s in
            (s["key"] as? String).map { ($0, s) }
        })
        #expect(Set(settings.keys) == Set(SettingSpec.all.map(\.key)))
        #expect(settings["mdns"]?["value"] as? Bool == false && settings["mdns"]?["line"] as? Int == 3)
        #expect(settings["mdns"]?["origin"] as? String == "\(file):3" && settings["mdns"]?["source"] as? String == "file")
        #expect(settings["peers"]?["value"] as? [String] == ["192.168.1.20:7070"] && settings["peers"]?["line"] as? Int == 4)
        #expect(settings["cache-dir"]?["source"] as? String == "flag" && settings["cache-dir"]?["value"] as? String == dir + "/c")
        #expect(settings["max-size"]?["value"] is NSNull && settings["max-size"]?["source"] as? String == "default")
        #expect(settings["listen"]?["env"] as? String == "MODELCACHE_LISTEN" && settings["listen"]?["flag"] as? String == "--listen")
    }

    @Test func aWrongFileIsOneLineAndExit78ForEveryCommand() async throws {
        defer { PosixFile.removeTree(dir) }
        let file = try write("listen = \"0.0.0.0:7070\"\n\nprot = 7070\n")
        for args in [["config"], ["serve", "--no-mdns", "--listen", "127.0.0.1:0"], ["list"], ["fetch", "http://127.0.0.1:1/x"]] {
            let r = try await run(args, config: file)
            expectOneLineConfigError(r, containing: "\(file):3: unknown key \"prot\": see modelcache config --example")
        }
        let range = try write("max-connections = 0\n", name: "range.toml")
        expectOneLineConfigError(try await run(["config"], config: range),
                                 containing: "\(range):1: max-connections '0' must be a whole number from 1 to 1000000")
        let crash = try write("# fine\n[[[\n", name: "crash.toml")
        expectOneLineConfigError(try await run(["serve", "--no-mdns"], config: crash), containing: "\(crash):2: malformed table header")
        expectOneLineConfigError(try await run(["config"], config: dir + "/missing.toml"),
                                 containing: "config file \(dir)/missing.toml (named by --config or MODELCACHE_CONFIG) does not exist")
        expectOneLineConfigError(try await run(["config", "--config", dir], config: nil), containing: "cannot read config file \(dir)")
        expectOneLineConfigError(try await run(["config"], config: nil, environment: ["MODELCACHE_MAX_SIZE": "12X"]),
                                 containing: "MODELCACHE_MAX_SIZE '12X' is not a size")
    }

    @Test func userFileIsFoundUnderXDGConfigHomeAndTheFlagWins() async throws {
        defer { PosixFile.removeTree(dir) }
        try PosixFile.makeDirectories(dir + "/xdg/modelcache")
        let user = try write("name = \"user\"\n", name: "xdg/modelcache/config.toml")
        let other = try write("name = \"other\"\n", name: "other.toml")
        let r = try await run(["config"], config: nil)
        #expect(r.stdout.contains("name                   = \"user\"  # \(user):1"), "\(r.stdout) \(r.stderr)")
        let flagged = try await run(["config", "--config", other], config: nil)
        #expect(flagged.stdout.contains("\"other\"  # \(other):1"), "\(flagged.stdout)")
        let none = try await run(["config", "--json"], config: "/dev/null")
        #expect(none.status == 0 && none.stdout.contains("\"file\":\"/dev/null\""), "\(none.stdout)")
    }

    @Test func everyCommandTakesTheCacheFolderFromTheFileUnlessMODELCACHE_DIRSaysOtherwise() async throws {
        defer { PosixFile.removeTree(dir) }
        let file = try write("cache-dir = \"\(dir)/from-file\"\n")
        let r = try await run(["list"], config: file)
        #expect(r.status == 0 && r.stdout == "(the cache at \(dir)/from-file is empty)\n", "\(r.stdout) \(r.stderr)")
        #expect(PosixFile.exists(dir + "/from-file/CACHEDIR.TAG"))
        let env = try await run(["list"], config: file, environment: ["MODELCACHE_DIR": dir + "/from-env"])
        #expect(env.stdout == "(the cache at \(dir)/from-env is empty)\n", "\(env.stdout) \(env.stderr)")
        let flag = try await run(["list", "--cache-dir", dir + "/from-flag"], config: file, environment: ["MODELCACHE_DIR": dir + "/from-env"])
        #expect(flag.stdout == "(the cache at \(dir)/from-flag is empty)\n", "\(flag.stdout) \(flag.stderr)")
    }

    @Test func serveTakesItsPortNameAndFolderFromTheFile() async throws {
        defer { PosixFile.removeTree(dir) }
        let port = try freeLoopbackPort()
        let file = try write("""
            listen = "127.0.0.1:\(port)"
            mdns = false
            name = "file-node"
            cache-dir = "\(dir)/cache"
            max-connections = 64

            """)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: modelcacheBinary)
        p.arguments = ["serve"]
        var env = ProcessInfo.processInfo.environment
        env["MODELCACHE_CONFIG"] = file
        env["XDG_CONFIG_HOME"] = dir + "/xdg"
        p.environment = env
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        defer { killNow(p) }
        let http = HTTPClient.forModelCache()
        defer { Task { try? await http.shutdown() } }
        var info = ""
        for _ in 0..<200 where info.isEmpty {  // bounded: up to 10 s for the node to come up
            if let res = try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/info"), timeout: .seconds(2)),
               res.status == .ok, let body = try? await res.body.collect(upTo: 1 << 16) {
                info = String(buffer: body)
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        await stopProcess(p)
        let stderr = String(decoding: await readToEnd(err.fileHandleForReading), as: UTF8.self)
        #expect(info.contains("file-node"), "the peer API answered on the file's port with the file's name: \(info) \(stderr)")
        #expect(stderr.contains("'file-node' serving \(dir)/cache on 127.0.0.1:\(port)"), "\(stderr)")
        #expect(p.terminationStatus == 0)
    }

    @Test func exampleFileIsTheCheckedInPackagingFile() async throws {
        let r = try await run(["config", "--example"], config: "/dev/null")
        #expect(r.status == 0)
        #expect(r.stdout == ConfigReport.exampleFile())
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let checkedIn = try String(contentsOf: root.appendingPathComponent("packaging/config.toml"), encoding: .utf8)
        #expect(checkedIn == r.stdout, "packaging/config.toml is stale: regenerate it with modelcache config --example > packaging/config.toml")
    }

    /// The table's defaults are NodeSettings' and FetchEngine.Settings' own (the code's defaults, documented once).
    @Test func tableDefaultsAreTheNodeDefaults() throws {
        var r = try ConfigResolver(file: nil, environment: [:])
        let (node, engine) = (NodeSettings(), FetchEngine.Settings())
        #expect(try r.text(.listen, flag: noFlag) == "\(node.listenHost):\(node.listenPort)")
        #expect(try r.list(.peers, flag: noFlag) == node.staticPeers.map(\.description))
        #expect(try r.bool(.mdns, flag: noFlag) == node.mdns)
        #expect(try r.int(.maxUploads, flag: noFlag) == node.maxUploads)
        #expect(try r.bytes(.maxUploadRate, flag: noFlag) == node.maxUploadRate)
        #expect(try r.bytes(.maxOriginRate, flag: noFlag) == engine.maxOriginRate)
        #expect(try r.text(.hfUpstream, flag: noFlag) == node.hfUpstream)
        #expect(try r.bytes(.maxSize, flag: noFlag) == engine.maxCacheSize)
        #expect(try r.int(.idleTimeout, flag: noFlag).map { Duration.seconds($0) } == node.idleTimeout)
        #expect(try r.int(.maxConnections, flag: noFlag) == node.maxConnections)
        #expect(try r.list(.allowOrigins, flag: noFlag) == node.allowedOrigins)
        #expect(SettingSpec.defaultPort == NodeSettings.defaultPort)
    }
}
