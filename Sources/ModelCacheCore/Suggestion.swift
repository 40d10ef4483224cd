/// "Did you mean …?" for a mistyped command: the closest known name by edit distance (a swap of two neighbours
/// counts as one edit), when it is close enough to be a typo.
public enum Suggestion {
    public static func closest(to word: String, among names: [String]) -> String? {
        let w = Array(word.lowercased().prefix(64))
        guard !w.isEmpty else { return nil }
        let scored = names.map { (name: $0, d: distance(w, Array($0.lowercased().prefix(64)))) }
        guard let best = scored.min(by: { $0.d != $1.d ? $0.d < $1.d : $0.name < $1.name }) else { return nil }
        // One edit for short words, up to a third of the word for longer ones; a unique prefix counts too.
        if best.d <= max(1, w.count / 3) { return best.name }
        let starts = names.filter { $0.lowercased().hasPrefix(String(w)) }
        return starts.count == 1 ? starts[0] : nil
    }

    /// Optimal string alignment distance.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }
}
