import TOMLKit

/// config.toml: which file is read, and its settings checked against SettingSpec.all. Pure: the caller says which
/// files exist and passes the bytes.
public struct ConfigFile: Sendable, Equatable {
    public static let systemPath = "/etc/modelcache/config.toml"
    /// Larger files are refused before parsing (a config file is a few hundred bytes).
    public static let maxBytes = 64 * 1024

    /// One setting read from the file: its checked value and the line of its key.
    public struct Entry: Sendable, Equatable {
        public var value: SettingValue
        public var line: Int

        public init(value: SettingValue, line: Int) {
            self.value = value
            self.line = line
        }
    }

    public var path: String
    public var entries: [String: Entry]

    /// Which file to read: `--config PATH`, else `$MODELCACHE_CONFIG` (either must exist: `required`), else the
    /// user's `$XDG_CONFIG_HOME/modelcache/config.toml` (default `~/.config`), else `/etc/modelcache/config.toml`.
    /// nil: no file (neither default file exists).
    public struct Location: Sendable, Equatable {
        public var path: String
        public var required: Bool

        public init(path: String, required: Bool) {
            self.path = path
            self.required = required
        }
    }

    public static func locate(flag: String?, environment: [String: String], exists: (String) -> Bool) throws(ConfigError) -> Location? {
        if let explicit = flag ?? environment["MODELCACHE_CONFIG"] {
            let named = flag != nil ? "--config" : "MODELCACHE_CONFIG"
            guard !explicit.isEmpty else {
                throw ConfigError("\(named) is empty: give a config file's path (/dev/null for none)")
            }
            return Location(path: explicit, required: true)
        }
        if let user = userPath(environment: environment), exists(user) { return Location(path: user, required: false) }
        if exists(systemPath) { return Location(path: systemPath, required: false) }
        return nil
    }

    /// `$XDG_CONFIG_HOME/modelcache/config.toml`, else `$HOME/.config/modelcache/config.toml`.
    public static func userPath(environment: [String: String]) -> String? {
        if let x = environment["XDG_CONFIG_HOME"], x.hasPrefix("/") { return x + "/modelcache/config.toml" }
        if let h = environment["HOME"], h.hasPrefix("/") { return h + "/.config/modelcache/config.toml" }
        return nil
    }

    /// Parses and checks the file's bytes. Every failure is one line, `path:line: what is wrong: what to do`.
    public init(path: String, bytes: [UInt8]) throws(ConfigError) {
        self.path = path
        self.entries = [:]
        guard bytes.count <= ConfigFile.maxBytes else {
            throw ConfigError("\(path) is \(bytes.count) bytes: a config file is at most \(ConfigFile.maxBytes); check that it is the right file")
        }
        if let bad = ConfigFile.lineOfInvalidUTF8(bytes) {
            throw ConfigError(path: path, line: bad, "not UTF-8 text: save the file as UTF-8")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let form: FormCheck
        switch FormCheck.check(text) {
        case .success(let f): form = f
        case .failure(let p): throw ConfigError(path: path, line: p.line, p.message)
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError(path: path, line: max(1, e.source.begin.line), "\(e.description) (TOML syntax: see modelcache config --example)")
        } catch {
            throw ConfigError(path: path, line: 1, "cannot parse the file: \(error)")
        }
        // Keys in the order of their lines, so the first wrong one is reported.
        let keys = table.keys.sorted { (form.keyLines[$0] ?? 0, $0) < (form.keyLines[$1] ?? 0, $1) }
        for key in keys {
            let line = form.keyLines[key] ?? 1
            guard let spec = SettingSpec.named(key) else {
                let hint = ConfigFile.suggestion(for: key).map { " (did you mean \"\($0)\"?)" } ?? ""
                throw ConfigError(path: path, line: line, "unknown key \"\(key)\"\(hint): see modelcache config --example for every setting")
            }
            guard let value = table[key] else { continue }
            let raw: RawSetting
            switch value.type {
            case .string: raw = .string(value.string ?? "")
            case .int: raw = .int(value.int ?? 0)
            case .bool: raw = .bool(value.bool ?? false)
            case .array:
                let items = value.array.map { Array($0) } ?? []
                let strings = items.compactMap { $0.type == .string ? $0.string : nil }
                guard strings.count == items.count else {
                    throw ConfigError(path: path, line: line, "\(key) must be \(spec.kind.expected)")
                }
                raw = .strings(strings)
            default:
                throw ConfigError(path: path, line: line, "\(key) must be \(spec.kind.expected), not a \(value.type)")
            }
            do {
                entries[key] = Entry(value: try spec.kind.parse(raw, name: "\(key)", fromFile: true), line: line)
            } catch {
                throw ConfigError(path: path, line: line, error.description)
            }
        }
    }

    /// The nearest known key, if it is close (a typo, `_` for `-`): for "did you mean".
    static func suggestion(for key: String) -> String? {
        let normalized = key.lowercased().replacingOccurrences(of: "_", with: "-")
        var best: (String, Int)?
        for spec in SettingSpec.all {
            let d = editDistance(normalized, spec.key)
            if d <= max(2, spec.key.count / 4), d < best?.1 ?? Int.max { best = (spec.key, d) }
        }
        if best == nil, let f = SettingSpec.all.first(where: { $0.flag == "--" + normalized }) { return f.key }
        return best?.0
    }

    /// Levenshtein distance (keys are short; long inputs are cut to keep it cheap).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars.prefix(64)), y = Array(b.unicodeScalars.prefix(64))
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count)
        for i in 1...x.count {
            var current = [i] + Array(repeating: 0, count: y.count)
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[y.count]
    }

    /// The line of the first byte that is not UTF-8, or nil when all of it is.
    static func lineOfInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var decoder = UTF8()
        var it = bytes.makeIterator()
        var line = 1
        while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): if s == "\n" { line += 1 }
            case .emptyInput: return nil
            case .error: return line
            }
        }
    }
}
