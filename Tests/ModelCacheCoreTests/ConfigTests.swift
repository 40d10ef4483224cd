import Foundation
import Testing
import ModelCacheCore

/// config.toml, the MODELCACHE_* variables and the flags (issue 13 §2): precedence, every error form with its line,
/// ranges, unknown keys, the example file, hostile input.
@Suite struct ConfigTests {
    static let path = "/etc/modelcache/config.toml"

    func file(_ text: String) throws(ConfigError) -> ConfigFile {
        try ConfigFile(path: Self.path, bytes: Array(text.utf8))
    }

    /// The error's message (and that it is one line), or "" when the text parsed.
    func error(_ text: String) -> String {
        do {
            _ = try file(text)
            return ""
        } catch {
            #expect(!error.message.contains("\n"), "\(error.message)")
            #expect(error.exitCode == 78)
            return error.message
        }
    }

    // MARK: precedence

    @Test func flagBeatsEnvironmentBeatsFileBeatsDefault() throws {
        let f = try file("listen = \"10.0.0.1:1\"\nmax-size = \"1G\"\nname = \"file\"\nidle-timeout = 5\n")
        var r = try ConfigResolver(file: f, environment: ["MODELCACHE_LISTEN": "10.0.0.2:2", "MODELCACHE_MAX_SIZE": "2G"])
        let listen = try r.resolve(.listen, flag: "10.0.0.3:3")
        #expect(listen.value == .text("10.0.0.3:3") && listen.source == .flag("--listen"))
        let size = try r.resolve(.maxSize, flag: noFlag)
        #expect(size.value == .bytes(2 << 30) && size.source == .environment("MODELCACHE_MAX_SIZE"))
        let name = try r.resolve(.name, flag: noFlag)
        #expect(name.value == .text("file") && name.source == .file(path: Self.path, line: 3))
        #expect(try r.int(.idleTimeout, flag: noFlag) == 5)
        let conns = try r.resolve(.maxConnections, flag: noFlag)
        #expect(conns.value == .int(512) && conns.source == .defaultValue)
        #expect(try r.bytes(.maxOriginRate, flag: noFlag) == nil, "no default: no limit")
        #expect(r.resolved.map(\.spec.key) == ["listen", "name", "max-origin-rate", "max-size", "idle-timeout", "max-connections"],
                "in the table's order")
    }

    @Test func computedDefaultsFillWhatTheTableLeavesToRunTime() throws {
        var r = try ConfigResolver(file: nil, environment: [:], computedDefaults: ["cache-dir": .text("/home/u/.cache/modelcache")])
        #expect(try r.text(.cacheDir, flag: noFlag) == "/home/u/.cache/modelcache")
        var e = try ConfigResolver(file: nil, environment: ["MODELCACHE_DIR": ""], computedDefaults: ["cache-dir": .text("/x")])
        #expect(try e.text(.cacheDir, flag: noFlag) == "", "MODELCACHE_DIR=\"\" is kept (the store refuses it), not replaced")
    }

    @Test func listsBoolsAndFlagsOfEveryShape() throws {
        let f = try file("peers = [\"a:1\", \"[fe80::1]:7070\"]\nmdns = false\nallow-origins = [\"HTTP://LocalHost:80/\"]\n")
        var r = try ConfigResolver(file: f, environment: ["MODELCACHE_PEERS": "b:2, c:3"])
        #expect(try r.list(.peers, flag: [String]()) == ["b:2", "c:3"], "an empty flag list is not given")
        #expect(try r.list(.peers, flag: ["d:4"]) == ["d:4"])
        #expect(try r.bool(.mdns, flag: noFlag) == false)
        #expect(try r.bool(.mdns, flag: true) == true)
        #expect(try r.resolve(.mdns, flag: false).source == .flag("--no-mdns"))
        #expect(try r.list(.allowOrigins, flag: [String]()) == ["http://localhost"], "origins are normalized")
        #expect(try r.int(.maxUploads, flag: 7) == 7)
        var env = try ConfigResolver(file: nil, environment: ["MODELCACHE_MDNS": "off", "MODELCACHE_MAX_UPLOAD_CONNECTIONS": "64"])
        #expect(try env.bool(.mdns, flag: noFlag) == false)
        #expect(try env.int(.maxUploads, flag: noFlag) == 64)
    }

    @Test func emptyFileAndCommentsOnlyGiveDefaults() throws {
        for text in ["", "\n\n", "# nothing\n   # at all\n", "\u{FEFF}# with a byte order mark\n"] {
            let f = try file(text)
            #expect(f.entries.isEmpty)
            var r = try ConfigResolver(file: f, environment: [:])
            #expect(try r.text(.listen, flag: noFlag) == "0.0.0.0:7070")
        }
    }

    // MARK: errors, each with its line

    @Test func unknownKeyNamesTheLineAndTheNearestKey() {
        #expect(error("# c\nlisten = \"a:1\"\n\nlisen = \"b:2\"\n") == "\(Self.path):4: unknown key \"lisen\" (did you mean \"listen\"?): see modelcache config --example for every setting")
        #expect(error("max_size = 5\n").hasPrefix("\(Self.path):1: unknown key \"max_size\" (did you mean \"max-size\"?)"))
        #expect(error("mdns = true\npeer = [\"a:1\"]\n").hasPrefix("\(Self.path):2: unknown key \"peer\" (did you mean \"peers\"?)"))
        #expect(error("allow-origin = []\n").contains("did you mean \"allow-origins\"?"))
        #expect(error("allow-origin = 3\n").contains("did you mean \"allow-origins\"?"), "a flag's name")
        #expect(error("x = 1\n") == "\(Self.path):1: unknown key \"x\": see modelcache config --example for every setting")
        #expect(error("name = \"n\"\n[serve]\nlisten = \"a:1\"\n").hasPrefix("\(Self.path):2: unknown key \"serve\""), "no tables")
        #expect(error("a.b = 1\n").hasPrefix("\(Self.path):1: unknown key \"a\""))
        #expect(error("\"quoted key\" = 1\n").hasPrefix("\(Self.path):1: unknown key \"quoted key\""))
    }

    @Test func wrongTypesAndRangesNameTheKeyAndLine() {
        let p = Self.path
        #expect(error("\n\nmax-connections = 0\n") == "\(p):3: max-connections '0' must be a whole number from 1 to 1000000")
        #expect(error("max-connections = 1000001\n").hasPrefix("\(p):1: max-connections '1000001' must be"))
        #expect(error("max-upload-connections = 4097\n").hasPrefix("\(p):1: max-upload-connections '4097' must be a whole number from 1 to 4096"))
        #expect(error("idle-timeout = 86401\n").hasPrefix("\(p):1: idle-timeout"))
        #expect(error("idle-timeout = \"30\"\n") == "", "a number in quotes is read as the flag's text is")
        #expect(error("max-size = -1\n") == "\(p):1: max-size '-1' is not a size: give bytes or a number with K, M, G or T (say 50G)")
        #expect(error("max-size = \"12X\"\n").hasPrefix("\(p):1: max-size '12X' is not a size"))
        #expect(error("max-size = \"99999999999T\"\n").hasPrefix("\(p):1: max-size '99999999999T' is too large"))
        #expect(error("max-origin-rate = true\n").hasPrefix("\(p):1: max-origin-rate must be a size"))
        #expect(error("mdns = 1\n") == "\(p):1: mdns must be true or false")
        #expect(error("mdns = \"maybe\"\n").hasPrefix("\(p):1: mdns 'maybe' must be true or false"))
        #expect(error("listen = 7070\n") == "\(p):1: listen must be a \"HOST:PORT\" string")
        #expect(error("listen = \"127.0.0.1:99999\"\n").hasPrefix("\(p):1: listen address '127.0.0.1:99999': the port"))
        #expect(error("listen = \":7070\"\n").hasPrefix("\(p):1: listen address ':7070' has no host"))
        #expect(error("peers = \"a:1\"\n") == "\(p):1: peers must be an array of \"HOST:PORT\" strings")
        #expect(error("peers = [\"a:1\", 2]\n") == "\(p):1: peers must be an array of \"HOST:PORT\" strings")
        #expect(error("peers = [\"a:1\",\n  \"nocolon\"]\n").hasPrefix("\(p):1: peers 'nocolon' is not HOST:PORT"))
        #expect(error("allow-origins = [\"localhost:8000\"]\n").hasPrefix("\(p):1: allow-origins 'localhost:8000' is not a web origin"))
        #expect(error("hf-upstream = \"ftp://x\"\n").hasPrefix("\(p):1: hf-upstream 'ftp://x' is not an http(s) URL"))
        #expect(error("hf-upstream = \"none\"\n") == "")
        #expect(error("cache-dir = \"relative/dir\"\n").hasPrefix("\(p):1: cache-dir 'relative/dir' is not an absolute path"))
        #expect(error("name = [\"a\"]\n") == "\(p):1: name must be a string in quotes")
        #expect(error("name = { a = \"b\" }\n") == "\(p):1: name must be a string in quotes, not a table")
    }

    @Test func syntaxErrorsAndRefusedFormsNameTheirLine() {
        let p = Self.path
        #expect(error("name = \"a\"\nname = \"b\"\n").hasPrefix("\(p):2: "), "a key twice (toml++)")
        #expect(error("name = \"a\"\nlisten = \"b\n").hasPrefix("\(p):2: "), "an unterminated string (toml++)")
        #expect(error("a = 1\n\nidle-timeout = 1.5\n") == "\(p):3: '1.5' is not a value any setting takes: give text in quotes, a whole number, true or false")
        #expect(error("max-size = 200G\n").hasPrefix("\(p):1: '200G' is not a value any setting takes"))
        #expect(error("name = 1979-05-27T07:32:00Z\n").hasPrefix("\(p):1: '1979-05-27T07:32:00Z' is not a value"))
        #expect(error("# ok\n[[[\n").hasPrefix("\(p):2: malformed table header"))
        #expect(error("peers = [\"a:1\",\n}\n").hasPrefix("\(p):2: '}' does not close"))
        #expect(error("name = \"x\"\n\nname2 = \"a\u{7}b\"\n") == "\(p):3: control character 0x7 is not allowed in TOML")
        #expect(error("name = \"a\u{0}b\"\n").hasPrefix("\(p):1: control character 0x0"), "a NUL never reaches C")
        #expect(error("a = " + String(repeating: "[", count: 9)).hasPrefix("\(p):1: values nested more than 8 deep"))
        #expect(error(String(repeating: "#", count: ConfigFile.maxBytes + 1)).hasPrefix("\(p) is 65537 bytes"))
    }

    @Test func invalidUTF8NamesItsLine() {
        do {
            _ = try ConfigFile(path: "c.toml", bytes: Array("name = \"a\"\n\n".utf8) + [0x6e, 0xff, 0x0a])
            Issue.record("invalid UTF-8 was accepted")
        } catch {
            #expect(error.message == "c.toml:3: not UTF-8 text: save the file as UTF-8")
        }
    }

    @Test func aValueWithANewlineStaysOneLine() {
        let e = error("idle-timeout = \"1\\n2\"\n")
        #expect(e == "\(Self.path):1: idle-timeout '1\\u{a}2' must be a whole number from 1 to 86400")
    }

    @Test func keyLinesFollowMultiLineStringsAndArrays() throws {
        let text = """
            name = \"\"\"
            listen = "not a key"
            \"\"\"
            peers = [
              "a:1",  # [not a header]
              "b:2",
            ]
            # max-size = 1
            'max-connections' = 9
            idle-timeout = 7
            """
        guard case .success(let form) = FormCheck.check(text) else { Issue.record("refused"); return }
        #expect(form.keyLines == ["name": 1, "peers": 4, "max-connections": 9, "idle-timeout": 10])
        let f = try file(text)
        #expect(f.entries["idle-timeout"] == ConfigFile.Entry(value: .int(7), line: 10))
        #expect(f.entries["name"]?.value == .text("listen = \"not a key\"\n"))
        #expect(error("name = \"\"\"\nx\n\"\"\"\nmax-connections = 0\n").hasPrefix("\(Self.path):4: max-connections"))
    }

    @Test func environmentErrorsNameTheVariable() {
        for (variable, value, expected) in [("MODELCACHE_MAX_SIZE", "12X", "MODELCACHE_MAX_SIZE '12X' is not a size"),
                                            ("MODELCACHE_IDLE_TIMEOUT", "0", "MODELCACHE_IDLE_TIMEOUT '0' must be a whole number from 1 to 86400"),
                                            ("MODELCACHE_MDNS", "maybe", "MODELCACHE_MDNS 'maybe' must be true or false"),
                                            ("MODELCACHE_PEERS", "a:1,b", "MODELCACHE_PEERS 'b' is not HOST:PORT"),
                                            ("MODELCACHE_LISTEN", "x:70000", "MODELCACHE_LISTEN address 'x:70000'")] {
            do {
                _ = try ConfigResolver(file: nil, environment: [variable: value])
                Issue.record("\(variable)=\(value) was accepted")
            } catch {
                #expect(error.message.hasPrefix(expected), "\(error.message)")
                #expect(error.exitCode == 78)
            }
        }
    }

    @Test func flagErrorsAreInvalidArgumentsNamingTheFlag() throws {
        var r = try ConfigResolver(file: try file("max-size = \"1G\"\n"), environment: [:])
        #expect(throws: ModelCacheError.invalidArgument("--max-size '12X' is not a size: give bytes or a number with K, M, G or T (say 50G)")) {
            try r.resolve(.maxSize, flag: "12X")
        }
        #expect(throws: ModelCacheError.invalidArgument("--listen address ':7070' has no host: give HOST:PORT, e.g. 192.168.1.20:7070")) {
            try r.resolve(.listen, flag: ":7070")
        }
        #expect(throws: ModelCacheError.invalidArgument("--allow-origin 'localhost:8000' is not a web origin: give scheme://host[:port], e.g. http://localhost:8000")) {
            try r.resolve(.allowOrigins, flag: ["localhost:8000"])
        }
        #expect(ModelCacheError.invalidArgument("").exitCode == 64)
    }

    // MARK: which file

    @Test func fileChoiceFollowsFlagThenVariableThenUserThenSystem() throws {
        let user = "/home/u/.config/modelcache/config.toml"
        let xdg = "/x/modelcache/config.toml"
        let all: Set<String> = [user, xdg, ConfigFile.systemPath]
        let home = ["HOME": "/home/u"]
        #expect(try ConfigFile.locate(flag: "/f.toml", environment: ["MODELCACHE_CONFIG": "/e.toml"], exists: { _ in false })
                == .init(path: "/f.toml", required: true))
        #expect(try ConfigFile.locate(flag: nil, environment: ["MODELCACHE_CONFIG": "/e.toml"], exists: all.contains)
                == .init(path: "/e.toml", required: true))
        #expect(try ConfigFile.locate(flag: nil, environment: home.merging(["XDG_CONFIG_HOME": "/x"]) { a, _ in a }, exists: all.contains)
                == .init(path: xdg, required: false))
        #expect(try ConfigFile.locate(flag: nil, environment: home, exists: all.contains) == .init(path: user, required: false))
        #expect(try ConfigFile.locate(flag: nil, environment: home, exists: { $0 == ConfigFile.systemPath })
                == .init(path: ConfigFile.systemPath, required: false))
        #expect(try ConfigFile.locate(flag: nil, environment: home, exists: { _ in false }) == nil, "no file is fine")
        #expect(try ConfigFile.locate(flag: nil, environment: ["HOME": "/home/u", "XDG_CONFIG_HOME": "relative"], exists: all.contains)
                == .init(path: user, required: false), "a relative XDG_CONFIG_HOME is ignored (XDG spec)")
        #expect(throws: ConfigError.self) { try ConfigFile.locate(flag: "", environment: [:], exists: { _ in true }) }
        #expect(throws: ConfigError.self) { try ConfigFile.locate(flag: nil, environment: ["MODELCACHE_CONFIG": ""], exists: { _ in true }) }
    }

    // MARK: the table and the example file

    @Test func tableIsConsistent() throws {
        let keys = SettingSpec.all.map(\.key), envs = SettingSpec.all.map(\.env), flags = SettingSpec.all.compactMap(\.flag)
        #expect(Set(keys).count == keys.count && Set(envs).count == envs.count && Set(flags).count == flags.count)
        for spec in SettingSpec.all {
            #expect(spec.env.hasPrefix("MODELCACHE_"), "\(spec.key)")
            #expect(!spec.help.isEmpty && !spec.help.contains("\n"), "\(spec.key)")
            #expect(spec.defaultValue != nil || !spec.defaultNote.isEmpty, "\(spec.key): say what no default means")
            // The default and the example pass the setting's own check, written in a file.
            for literal in [spec.defaultValue?.toml, spec.example].compactMap({ $0 }) {
                let f = try file("\(spec.key) = \(literal)\n")
                #expect(f.entries[spec.key]?.line == 1, "\(spec.key) = \(literal)")
            }
        }
    }

    @Test func exampleFileUncommentedSetsEverySettingToItsDefaultOrExample() throws {
        let example = ConfigReport.exampleFile()
        #expect(try file(example).entries.isEmpty, "everything is commented out")
        let uncommented = example.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("#") && line.contains(" = ") && !line.hasPrefix("# ") ? String(line.dropFirst()) : String(line)
        }.joined(separator: "\n")
        let f = try file(uncommented)
        #expect(Set(f.entries.keys) == Set(SettingSpec.all.map(\.key)))
        for spec in SettingSpec.all where spec.defaultValue?.toml == spec.example {
            #expect(f.entries[spec.key]?.value == spec.defaultValue, "\(spec.key)")
        }
    }

    @Test func reportShowsEverySourceAndJSONParses() throws {
        let f = try file("\nmax-size = \"1K\"\n")
        var r = try ConfigResolver(file: f, environment: ["MODELCACHE_NAME": "env"])
        _ = try r.resolve(.listen, flag: "127.0.0.1:0")
        _ = try r.resolve(.name, flag: noFlag)
        _ = try r.resolve(.maxSize, flag: noFlag)
        _ = try r.resolve(.maxUploadRate, flag: noFlag)
        let text = ConfigReport.text(r.resolved, file: f.path)
        #expect(text.contains("listen          = \"127.0.0.1:0\"  # --listen\n"))
        #expect(text.contains("name            = \"env\"  # $MODELCACHE_NAME\n"))
        #expect(text.contains("max-size        = 1024  # \(Self.path):2\n"))
        #expect(text.contains("max-upload-rate = # (none: no limit)  # default\n"))
        let json = try JSONSerialization.jsonObject(with: Data(ConfigReport.json(r.resolved, file: f.path).utf8)) as? [String: Any]
        let settings = json?["settings"] as? [[String: Any]] ?? []
        #expect(json?["file"] as? String == Self.path)
        #expect(settings.map { $0["source"] as? String } == ["flag", "env", "default", "file"], "in the table's order")
        #expect(settings[3]["line"] as? Int == 2 && settings[3]["value"] as? Int == 1024)
        #expect(settings[2]["value"] is NSNull)
    }

    // MARK: hostile input

    @Test(arguments: ["[[[", "[ %]", "\u{FEFF}[=", "a = 1979-05-27T:00Z", "a = [1,}", "a = [\n}", "st= 00------e= 1 ",
                      "a = {b=[}]}", "x = 1e-5", "a = inf", "a = 0x", "[a", "a = \"\"\"", "'''", "=", "a ==", "\\",
                      "a = [[[[[[[[1]]]]]]]]", "a=[\"\"\"x\"\"\"\", 1979-05-27T:00Z]"])
    func hostileFormsAreOneLineErrorsNotCrashes(_ text: String) {
        let e = error(text)
        #expect(e.hasPrefix(Self.path), "\(text.debugDescription): \(e)")
    }
}
