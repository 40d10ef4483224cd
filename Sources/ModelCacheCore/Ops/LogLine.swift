/// How `serve` writes its log lines (`--log-format`).
public enum LogFormat: String, CaseIterable, Sendable {
    /// swift-log's own stream format (the default, for a terminal).
    case text
    /// One `key=value` line per event (journald, Loki, grep).
    case logfmt
    /// One JSON object per line.
    case json
}

/// One log event as a single line of logfmt or JSON (pure: the handler in `modelcache` gathers the fields).
/// Keys come in a fixed order: `time`, `level`, `label`, `msg`, then the metadata sorted by key, so two runs print
/// the same event the same way. No value can break the line: newlines and control characters are escaped.
public struct LogLine: Sendable, Equatable {
    /// Keys the line itself uses; a metadata key equal to one of them is written as `meta.<key>`.
    public static let reservedKeys: Set<String> = ["time", "level", "label", "msg"]

    public var time: String
    public var level: String
    public var label: String
    public var message: String
    public var metadata: [String: String]

    public init(time: String, level: String, label: String, message: String, metadata: [String: String] = [:]) {
        self.time = time
        self.level = level
        self.label = label
        self.message = message
        self.metadata = metadata
    }

    /// All fields in print order.
    public var fields: [(key: String, value: String)] {
        var out: [(key: String, value: String)] = [("time", time), ("level", level), ("label", label), ("msg", message)]
        for key in metadata.keys.sorted() {
            let value = metadata[key] ?? ""
            out.append((Self.reservedKeys.contains(key) ? "meta." + key : key, value))
        }
        return out
    }

    // MARK: logfmt

    /// `time=… level=info label=modelcache.node msg="node listening" listen=0.0.0.0:7070`, without a newline.
    public func logfmt() -> String {
        fields.map { Self.logfmtKey($0.key) + "=" + Self.logfmtValue($0.value) }.joined(separator: " ")
    }

    /// A key as logfmt allows it: printable ASCII other than space, `=` and `"`; anything else becomes `_`.
    static func logfmtKey(_ key: String) -> String {
        guard !key.isEmpty else { return "_" }
        return String(String.UnicodeScalarView(key.unicodeScalars.map { s in
            (s.value > 0x20 && s.value < 0x7F && s != "=" && s != "\"") ? s : "_"
        }))
    }

    /// A value bare when it can be (`info`, `42`, `a.b`), else in double quotes with `\"`, `\\`, `\n`, `\r`, `\t`
    /// and `\u00XX` escapes.
    static func logfmtValue(_ value: String) -> String {
        let bare = !value.isEmpty && value.unicodeScalars.allSatisfy { s in
            s.value > 0x20 && s.value != 0x7F && s != "=" && s != "\"" && s != "\\"
        }
        return bare ? value : "\"" + escaped(value) + "\""
    }

    // MARK: JSON

    /// `{"time":"…","level":"info","label":"…","msg":"…",…}`, without a newline.
    public func json() -> String {
        "{" + fields.map { "\"" + Self.escaped($0.key) + "\":\"" + Self.escaped($0.value) + "\"" }.joined(separator: ",") + "}"
    }

    /// The escapes JSON strings need (RFC 8259 §7), which logfmt's quoted values use too.
    static func escaped(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: false)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    // MARK: Time

    /// RFC 3339 UTC with milliseconds (`2026-12-03T06:17:02.123Z`) from milliseconds since 1970; no time zone data,
    /// no formatter (days to a civil date: Howard Hinnant's algorithm).
    public static func timestamp(millisecondsSince1970 ms: Int64) -> String {
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let msOfDay = ms - days * 86_400_000
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ n: Int64, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T"
            + pad(msOfDay / 3_600_000, 2) + ":" + pad(msOfDay / 60_000 % 60, 2) + ":" + pad(msOfDay / 1000 % 60, 2)
            + "." + pad(msOfDay % 1000, 3) + "Z"
    }
}
