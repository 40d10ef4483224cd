/// The file patterns of `hf download` / `snapshot_download` (`allow_patterns`, `ignore_patterns`), as
/// `huggingface_hub.utils.filter_repo_objects` applies them: Python's `fnmatch.fnmatchcase` (case-sensitive, `*`
/// matches across `/`), a pattern ending in `/` gets `*` appended, `\` counts as `/`.
public enum HubGlob {
    /// `fnmatch.fnmatchcase(path, pattern)`: `*` any run of characters, `?` one, `[seq]` / `[!seq]` a set (ranges
    /// `a-z`); an unclosed `[` is a literal.
    public static func matches(_ path: String, _ pattern: String) -> Bool {
        let p = Array(pattern.unicodeScalars), s = Array(path.unicodeScalars)
        // Iterative wildcard matching with one backtrack point for the last `*` (linear memory, bounded work).
        var pi = 0, si = 0
        var star: Int? = nil, starS = 0
        while si < s.count {
            if pi < p.count, p[pi] == "*" {
                star = pi
                starS = si
                pi += 1
                continue
            }
            if pi < p.count, let (ok, next) = matchOne(p, pi, s[si]), ok {
                pi = next
                si += 1
                continue
            }
            guard let st = star else { return false }
            pi = st + 1
            starS += 1
            si = starS
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// Whether `p[i...]`'s first element matches `c`, and where the pattern goes on. nil: never (end of pattern).
    static func matchOne(_ p: [Unicode.Scalar], _ i: Int, _ c: Unicode.Scalar) -> (Bool, Int)? {
        guard i < p.count else { return nil }
        switch p[i] {
        case "?": return (true, i + 1)
        case "[":
            guard let (set, negated, end) = bracket(p, i) else { return (c == "[", i + 1) }
            let inSet = set.contains { $0.contains(c) }
            return (inSet != negated, end)
        default: return (p[i] == c, i + 1)
        }
    }

    /// A `[...]` set starting at `i`: its ranges, whether it is negated, and the index after `]` (nil: unclosed).
    static func bracket(_ p: [Unicode.Scalar], _ i: Int) -> ([ClosedRange<Unicode.Scalar>], Bool, Int)? {
        var j = i + 1
        var negated = false
        if j < p.count, p[j] == "!" { negated = true; j += 1 }
        var ranges: [ClosedRange<Unicode.Scalar>] = []
        var first = true
        while j < p.count {
            if p[j] == "]" && !first { return (ranges, negated, j + 1) }
            first = false
            if j + 2 < p.count, p[j + 1] == "-", p[j + 2] != "]" {
                if p[j] <= p[j + 2] { ranges.append(p[j]...p[j + 2]) }
                j += 3
            } else {
                ranges.append(p[j]...p[j])
                j += 1
            }
        }
        return nil
    }

    static func normalize(_ pattern: String) -> String {
        let p = pattern.replacingOccurrences(of: "\\", with: "/")
        return p.hasSuffix("/") ? p + "*" : p
    }

    /// `filter_repo_objects(paths, allow_patterns:, ignore_patterns:)`, order kept.
    public static func filter(_ paths: [String], allow: [String]?, ignore: [String]?) -> [String] {
        let a = allow?.map(normalize), i = ignore?.map(normalize)
        return paths.filter { raw in
            let path = raw.replacingOccurrences(of: "\\", with: "/")
            if let a, !a.contains(where: { matches(path, $0) }) { return false }
            if let i, i.contains(where: { matches(path, $0) }) { return false }
            return true
        }
    }
}

/// What `hf download REPO [FILES…] [--include] [--exclude]` asks for (`huggingface_hub/cli/download.py`): one plain
/// file name is a single-file download (`hf_hub_download`, which prints the file's path); anything else is a
/// snapshot with patterns: file names and `dir/` (as `dir/**`) become the allow list, and `--include`/`--exclude`
/// apply only when no file is named.
public struct HubFileSelection: Sendable, Equatable {
    public var allow: [String]?
    public var ignore: [String]?
    /// The one file of a single-file download.
    public var single: String?

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case folderWithPatterns(String)
        public var description: String {
            switch self {
            case .folderWithPatterns(let f): "a folder argument ('\(f)') cannot be combined with --include or --exclude: use --include \"\(f)*\""
            }
        }
    }

    public init(files: [String], include: [String], exclude: [String]) throws(Problem) {
        let folders = files.filter { $0.hasSuffix("/") }
        let plain = files.filter { !$0.hasSuffix("/") }
        if let f = folders.first, !include.isEmpty || !exclude.isEmpty { throw .folderWithPatterns(f) }
        let folderPatterns = folders.map { String($0.reversed().drop { $0 == "/" }.reversed()) + "/**" }
        if plain.count == 1 && folders.isEmpty {
            single = plain[0]
            allow = [plain[0]]
        } else if files.isEmpty {
            allow = include.isEmpty ? nil : include
            ignore = exclude.isEmpty ? nil : exclude
        } else {
            allow = plain + folderPatterns
        }
    }

    public func apply(_ paths: [String]) -> [String] {
        if let single { return paths.contains(single) ? [single] : [] }
        return HubGlob.filter(paths, allow: allow, ignore: ignore)
    }
}
