/// A small hand-written pass over config.toml before TOMLKit sees it. toml++ (inside TOMLKit) aborts the whole
/// process on some malformed input instead of throwing (its `TOML_ASSERT`s; found with libFuzzer against toml++
/// itself, kept in Tests/Fuzz/crashes/config/):
/// - a table header whose first character is neither a bare-key character nor a quote: `[[[`, `[=`, `[ %]`, also
///   after a UTF-8 byte order mark (`parse_key`: "is_bare_key_character(*cp) || is_string_delimiter(*cp)");
/// - a malformed date or time: `a = 1979-05-27T:00Z` (`parse_time`: "is_decimal_digit(*cp)");
/// - a '}' where an array expects a value: `a = [1,}`, `a = [\n}` (`parse_value`: "!is_value_terminator(*cp)");
/// - some bare values toml++ guesses the type of by looking ahead: `a = 00------e= 1 ` (`parse_value`, the same).
/// So this pass lets through only what the settings need: a bare value must be `true`, `false` or a whole number
/// (text goes in quotes; no setting is a float, date or time), brackets must match, a header must start with a key.
/// It also refuses control characters (TOML forbids them; a NUL would cut the text short on its way to C) and deep
/// nesting, each with its line; and it records the line of every top-level key and table header, for errors about
/// values (TOMLKit gives no positions for those). Strings (basic, literal, multi-line) and comments are skipped the
/// way TOML reads them.
public struct FormCheck: Sendable, Equatable {
    /// The first line on which each top-level key (its first dotted part) or table header appears.
    public var keyLines: [String: Int] = [:]

    /// A problem found: the line (from 1) and what is wrong.
    public struct Problem: Error, Sendable, Equatable {
        public var line: Int
        public var message: String
    }

    static let maxDepth = 8

    public static func check(_ text: String) -> Result<FormCheck, Problem> {
        var result = FormCheck()
        let b = Array(text.utf8)

        // Control characters first: a clear message, and nothing below has to think about them.
        var l = 1
        for c in b {
            if c == 0x0a { l += 1; continue }
            if (c < 0x20 && c != 0x09 && c != 0x0d) || c == 0x7f {
                return .failure(Problem(line: l, message: "control character 0x\(String(c, radix: 16, uppercase: true)) is not allowed in TOML"))
            }
        }

        func at(_ k: Int) -> UInt8 { k < b.count ? b[k] : 0 }
        var i = b.starts(with: [0xef, 0xbb, 0xbf]) ? 3 : 0  // a UTF-8 byte order mark, which toml++ skips too
        var line = 1
        var open: [UInt8] = []  // brackets open here: '[' (array), '{' (inline table), 'h' (a table header)
        var atLineStart = true  // only spaces and tabs so far on this line, outside any string
        var expectValue = false  // after '=', or after '[' or ',' in an array

        while i < b.count {
            let c = b[i]
            switch c {
            case 0x0a:  // newline
                line += 1
                atLineStart = true
                if open.last != 0x5b { expectValue = false }  // arrays may span lines
                i += 1
                continue
            case 0x20, 0x09, 0x0d:
                i += 1
                continue
            case 0x23:  // '#': a comment to the end of the line
                while i < b.count && b[i] != 0x0a { i += 1 }
                continue
            case 0x3d:  // '='
                atLineStart = false
                expectValue = true
                i += 1
                continue
            case 0x2c:  // ','
                atLineStart = false
                expectValue = open.last == 0x5b
                i += 1
                continue
            case 0x22, 0x27:  // '"' or '\'': a string (a quoted key, or a value)
                if atLineStart && open.isEmpty, let key = quotedKey(b, from: i), result.keyLines[key] == nil {
                    result.keyLines[key] = line
                }
                atLineStart = false
                expectValue = false
                if at(i + 1) == c && at(i + 2) == c {  // multi-line: up to the next triple quote
                    i += 3
                    while i < b.count {
                        if b[i] == 0x0a { line += 1 }
                        if c == 0x22 && b[i] == 0x5c {  // an escape in a basic string (a line-ending backslash too)
                            if at(i + 1) == 0x0a { line += 1 }
                            i += 2
                            continue
                        }
                        if b[i] == c && at(i + 1) == c && at(i + 2) == c {
                            i += 3
                            var extra = 0  // up to two more quotes belong to the content
                            while extra < 2 && at(i) == c { i += 1; extra += 1 }
                            break
                        }
                        i += 1
                    }
                } else {
                    i += 1
                    while i < b.count && b[i] != 0x0a {
                        if c == 0x22 && b[i] == 0x5c { i += 2; continue }
                        if b[i] == c { i += 1; break }
                        i += 1
                    }
                }
                if i > b.count { i = b.count }
                continue
            case 0x5b, 0x7b:  // '[' or '{'
                if c == 0x5b && atLineStart && open.isEmpty {
                    // A table header: `[name]` or `[[name]]`; its first character must start a key.
                    var k = i + 1
                    if at(k) == 0x5b { k += 1 }
                    while at(k) == 0x20 || at(k) == 0x09 { k += 1 }
                    let first = at(k)
                    guard isBareKey(first) || first == 0x22 || first == 0x27 else {
                        return .failure(Problem(line: line, message: "malformed table header: give [name] (every setting is a top-level key, no table is used)"))
                    }
                    let name = first == 0x22 || first == 0x27 ? quotedKey(b, from: k) : bareKey(b, from: k)
                    if let name, result.keyLines[name] == nil { result.keyLines[name] = line }
                    open.append(0x68)
                    if at(i + 1) == 0x5b { open.append(0x68); i += 1 }
                    expectValue = false
                } else {
                    open.append(c)
                    expectValue = c == 0x5b
                }
                atLineStart = false
                if open.count > FormCheck.maxDepth {
                    return .failure(Problem(line: line, message: "values nested more than \(FormCheck.maxDepth) deep: no setting needs that"))
                }
                i += 1
                continue
            case 0x5d, 0x7d:  // ']' or '}'
                atLineStart = false
                expectValue = false
                let last = open.popLast()
                guard (c == 0x5d && (last == 0x5b || last == 0x68)) || (c == 0x7d && last == 0x7b) else {
                    return .failure(Problem(line: line, message: "'\(c == 0x5d ? "]" : "}")' does not close the last '[' or '{' opened: check the brackets"))
                }
                i += 1
                continue
            default:
                break
            }
            // A bare run: a key (or part of a dotted key), or a value. A value runs up to what toml++ takes as its end
            // (space, ',', ']', '}', '#'): it reads that far to guess the type, quotes and '=' included.
            let start = i
            while i < b.count {
                let d = b[i]
                if d == 0x20 || d == 0x09 || d == 0x0a || d == 0x0d || d == 0x23 || d == 0x5d || d == 0x7d || d == 0x2c { break }
                if !expectValue && (d == 0x22 || d == 0x27 || d == 0x5b || d == 0x7b || d == 0x3d) { break }
                i += 1
            }
            let token = b[start..<i]
            if expectValue {
                guard isPlainValue(token) else {
                    return .failure(Problem(line: line, message: "'\(String(decoding: token.prefix(40), as: UTF8.self))' is not a value any setting takes: give text in quotes, a whole number, true or false"))
                }
                expectValue = false
            } else if atLineStart && open.isEmpty, let key = bareKey(b, from: start), result.keyLines[key] == nil {
                result.keyLines[key] = line
            }
            atLineStart = false
        }
        return .success(result)
    }

    /// `true`, `false`, or a whole number: an optional sign, then digits and underscores.
    static func isPlainValue(_ t: ArraySlice<UInt8>) -> Bool {
        if t.elementsEqual("true".utf8) || t.elementsEqual("false".utf8) { return true }
        var digits = t[...]
        if let f = digits.first, f == 0x2b || f == 0x2d { digits = digits.dropFirst() }
        guard let f = digits.first, f >= 0x30 && f <= 0x39 else { return false }
        return digits.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }
    }

    static func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d
    }

    /// The bare key starting at `from` (up to a '.', space, '=' …), or nil if none starts there.
    static func bareKey(_ b: [UInt8], from: Int) -> String? {
        var k = from
        while k < b.count, isBareKey(b[k]) { k += 1 }
        return k > from ? String(decoding: b[from..<k], as: UTF8.self) : nil
    }

    /// The quoted key starting at `from` (a single-line string without escapes), or nil.
    static func quotedKey(_ b: [UInt8], from: Int) -> String? {
        guard from < b.count else { return nil }
        let q = b[from]
        var k = from + 1
        while k < b.count && b[k] != q && b[k] != 0x0a && b[k] != 0x5c { k += 1 }
        guard k < b.count, b[k] == q, k > from + 1 else { return nil }
        return String(decoding: b[(from + 1)..<k], as: UTF8.self)
    }
}
