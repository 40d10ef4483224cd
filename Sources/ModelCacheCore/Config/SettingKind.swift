import Foundation

/// What a setting holds, and the one check every source goes through (a flag, `MODELCACHE_*`, config.toml): the same
/// range and form wherever the value comes from. Failures are one-line `invalidArgument` errors naming the value's
/// place (`--max-size`, `MODELCACHE_MAX_SIZE`, `/etc/modelcache/config.toml:4: max-size`).
public enum SettingKind: Sendable, Equatable {
    /// A folder. In config.toml it must be absolute (the file's folder is not the working directory).
    case path
    /// Any string (a name).
    case text
    case bool
    /// A whole number within the range (a count, or seconds).
    case count(ClosedRange<Int>)
    /// Bytes: a whole number, or with K, M, G, T (binary multiples).
    case size
    /// `HOST:PORT`, port 0 allowed when `allowAnyPort`.
    case address(allowAnyPort: Bool)
    /// A list of `HOST:PORT` (an array in the file; comma- or space-separated in the environment).
    case addresses
    /// An http(s) URL, or `none`.
    case urlOrNone
    /// One of these words.
    case choice([String])
    /// A socket's permission bits in octal (`FileModeOption.socketMode`), as a string: "0660".
    case socketMode
    /// A forward proxy, `http://[user:pass@]HOST[:PORT]`, or `none`.
    case proxyOrNone
    /// A list of web origins, `scheme://host[:port]` (normalized to lower case, no default port).
    case origins
    /// A list of upstream registries, `NAME=URL` (`RegistryMirror`).
    case registryMirrors

    /// What the file must hold, for type errors: "must be <this>".
    public var expected: String {
        switch self {
        case .path: "an absolute path in quotes"
        case .text: "a string in quotes"
        case .bool: "true or false"
        case .count(let r): "a whole number from \(r.lowerBound) to \(r.upperBound)"
        case .size: "a size: a whole number of bytes, or a string such as \"50G\""
        case .address: "a \"HOST:PORT\" string"
        case .addresses: "an array of \"HOST:PORT\" strings"
        case .urlOrNone: "a URL in quotes, or \"none\""
        case .choice(let words): "one of " + words.map { "\"\($0)\"" }.joined(separator: ", ")
        case .socketMode: "an octal mode in quotes, from \"0600\" to \"0666\""
        case .proxyOrNone: "an http://HOST:PORT proxy URL in quotes, or \"none\""
        case .origins: "an array of web origins in quotes"
        case .registryMirrors: "an array of \"NAME=URL\" strings"
        }
    }

    /// Checks `raw` and returns the value to use. `name` is how errors name it; `fromFile`: it was read from config.toml.
    public func parse(_ raw: RawSetting, name: String, fromFile: Bool = false) throws(ModelCacheError) -> SettingValue {
        switch (self, raw) {
        case (.path, .string(let s)):
            if fromFile && !s.hasPrefix("/") {
                throw .invalidArgument("\(name) '\(s)' is not an absolute path: give a path from /")
            }
            return .text(s)
        case (.text, .string(let s)):
            return .text(s)
        case (.bool, .bool(let b)):
            return .bool(b)
        case (.bool, .string(let s)):
            switch s.lowercased() {
            case "1", "true", "yes", "on": return .bool(true)
            case "0", "false", "no", "off": return .bool(false)
            default: throw .invalidArgument("\(name) '\(s)' must be true or false (or 1, 0, yes, no, on, off)")
            }
        case (.count(let r), .int(let n)):
            return .int(try CommandLineNumber.check(n, option: name, in: r))
        case (.count(let r), .string(let s)):
            return .int(try CommandLineNumber.count(s, option: name, in: r))
        case (.size, .int(let n)):
            guard n >= 0 else { throw .invalidArgument("\(name) '\(n)' is not a size: give bytes or a number with K, M, G or T (say 50G)") }
            return .bytes(Int64(n))
        case (.size, .string(let s)):
            return .bytes(try CommandLineNumber.size(s, option: name))
        case (.address(let any), .string(let s)):
            _ = try HostPort(parsing: s, allowAnyPort: any, role: "\(name) address")
            return .text(s)
        case (.addresses, .string(let s)) where !fromFile:
            return try parse(.strings(SettingKind.split(s)), name: name, fromFile: fromFile)
        case (.addresses, .strings(let l)):
            for s in l { _ = try HostPort(parsing: s, role: name) }
            return .list(l)
        case (.urlOrNone, .string(let s)):
            if s == "none" { return .text(s) }
            if let problem = HTTPURLCheck.problem(s) {
                throw .invalidArgument("\(name) '\(s)' is not an http(s) URL (\(problem)): give one such as https://huggingface.co, or none")
            }
            return .text(s)
        case (.choice(let words), .string(let s)):
            guard words.contains(s) else { throw .invalidArgument("\(name) '\(s)' must be \(expected)") }
            return .text(s)
        case (.socketMode, .string(let s)):
            _ = try FileModeOption.socketMode(s, option: name)
            return .text(s)
        case (.proxyOrNone, .string(let s)):
            if s != "none" { _ = try ProxyRule.Server(parsing: s, name: name) }
            return .text(s)
        case (.origins, .string(let s)) where !fromFile:
            return try parse(.strings(SettingKind.split(s)), name: name, fromFile: fromFile)
        case (.origins, .strings(let l)):
            return .list(try l.map { o throws(ModelCacheError) in
                guard let n = BrowserAccess.normalizedOrigin(o) else {
                    throw .invalidArgument("\(name) '\(o)' is not a web origin: give scheme://host[:port], e.g. http://localhost:8000")
                }
                return n
            })
        case (.registryMirrors, .string(let s)) where !fromFile:
            return try parse(.strings(SettingKind.split(s)), name: name, fromFile: fromFile)
        case (.registryMirrors, .strings(let l)):
            _ = try RegistryMirrors(parsing: l, option: name)
            return .list(l)
        default:
            throw .invalidArgument("\(name) must be \(expected)")
        }
    }

    /// A list given as one string (an environment variable): items separated by commas or spaces.
    static func split(_ s: String) -> [String] {
        s.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
    }
}
