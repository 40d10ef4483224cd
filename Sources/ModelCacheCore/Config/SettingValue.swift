/// A setting's value once checked against its kind (SettingKind.parse): what `serve` and the cache folder use.
public enum SettingValue: Sendable, Equatable {
    case text(String)
    case bool(Bool)
    case int(Int)
    case bytes(Int64)
    case list([String])

    /// As it is written in config.toml (a TOML literal).
    public var toml: String {
        switch self {
        case .text(let s): SettingValue.quoted(s)
        case .bool(let b): b ? "true" : "false"
        case .int(let n): String(n)
        case .bytes(let n): String(n)
        case .list(let l): "[" + l.map(SettingValue.quoted).joined(separator: ", ") + "]"
        }
    }

    /// A TOML basic string: quotes, backslashes and control characters escaped (TOML's escapes are JSON's, which
    /// LogLine writes).
    static func quoted(_ s: String) -> String { "\"" + LogLine.escaped(s) + "\"" }
}

/// A value as it was given, before its kind is checked: a flag's or an environment variable's text, or a TOML value.
public enum RawSetting: Sendable, Equatable {
    case string(String)
    case strings([String])
    case bool(Bool)
    case int(Int)
}

/// Where an effective setting came from (precedence: flag > environment > file > default).
public enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    case flag(String)
    case environment(String)
    case file(path: String, line: Int)
    case defaultValue

    public var description: String {
        switch self {
        case .flag(let f): f
        case .environment(let e): "$" + e
        case .file(let path, let line): "\(path):\(line)"
        case .defaultValue: "default"
        }
    }

    /// A short word for `--json`: flag, env, file, default.
    public var kind: String {
        switch self {
        case .flag: "flag"
        case .environment: "env"
        case .file: "file"
        case .defaultValue: "default"
        }
    }
}

/// One setting as it will be used: its value (nil: none, e.g. no size limit) and where it came from.
public struct EffectiveSetting: Sendable, Equatable {
    public let spec: SettingSpec
    public let value: SettingValue?
    public let source: SettingSource
}
