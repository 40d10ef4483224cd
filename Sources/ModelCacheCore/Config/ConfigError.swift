/// A wrong config file or `MODELCACHE_*` variable: one line naming the file and line (or the variable), what is
/// wrong and what to do. Exit status 78 (EX_CONFIG, sysexits.h), documented in README.md.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var exitCode: Int32 { 78 }
    public var description: String { message }

    /// Control characters quoted from the file or the environment (a newline in a string) are escaped: one line.
    public init(_ message: String) {
        var out = ""
        for u in message.unicodeScalars {
            if u.value < 0x20 || u.value == 0x7f {
                out += "\\u{\(String(u.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        self.message = out
    }

    /// `path:line: what` (the file's lines count from 1).
    public init(path: String, line: Int, _ what: String) {
        self.init("\(path):\(line): \(what)")
    }
}
