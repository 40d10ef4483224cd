/// The one checked parser for numbers given on the command line: sizes with units (`50G`), counts, ports and rates.
/// Every failure is a one-line `invalidArgument` error naming the option and the accepted range; nothing overflows.
public enum CommandLineNumber {
    static let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]

    /// `1000`, `64K`, `10G`, `2TiB` (binary multiples), at most Int64.max bytes.
    public static func size(_ text: String, option: String) throws(ModelCacheError) -> Int64 {
        var t = text.trimmingASCIISpaces().uppercased()
        if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") { t.removeLast() }
        var multiplier: Int64 = 1
        if let last = t.last, let m = units[last] { multiplier = m; t.removeLast() }
        guard !t.isEmpty, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int64(t) else {
            throw .invalidArgument("\(option) '\(text)' is not a size: give bytes or a number with K, M, G or T (say 50G)")
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: multiplier)
        guard !overflow else {
            throw .invalidArgument("\(option) '\(text)' is too large: at most \(Int64.max >> 40)T")
        }
        return bytes
    }

    /// A whole number within `range`.
    public static func count(_ text: String, option: String, in range: ClosedRange<Int>) throws(ModelCacheError) -> Int {
        guard let n = Int(text.trimmingASCIISpaces()), range.contains(n) else {
            throw .invalidArgument("\(option) '\(text)' must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    /// A number already parsed (ArgumentParser's `Int`), checked against `range`.
    public static func check(_ n: Int, option: String, in range: ClosedRange<Int>) throws(ModelCacheError) -> Int {
        try count(String(n), option: option, in: range)
    }

    /// A TCP port: 1...65535, or 0 (any free port) with `allowAny`.
    public static func port(_ text: some StringProtocol, option: String, allowAny: Bool = false) throws(ModelCacheError) -> Int {
        try count(String(text), option: option, in: (allowAny ? 0 : 1)...65535)
    }
}

extension String {
    func trimmingASCIISpaces() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
