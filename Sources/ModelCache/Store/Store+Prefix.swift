import Foundation
import GRDB
import ModelCacheCore

extension Store {
    /// `what` as `rm`, `pin` and `unpin` take it: a URL, a whole digest, or a unique start of one (4 to 63 hex digits,
    /// as git takes). An ambiguous start is refused with the candidates; a start nothing has is `notInCache`.
    public func expandDigestPrefix(_ what: String) throws -> String {
        let lower = what.lowercased()
        guard (4...63).contains(lower.utf8.count), lower.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            return what
        }
        let hits = try db.read { db in
            try String.fetchAll(db, sql: "SELECT sha256 FROM blob WHERE substr(sha256, 1, ?) = ? LIMIT 9", arguments: [lower.utf8.count, lower])
        }
        switch UniquePrefix.match(lower, in: hits, minimumLength: 4) {
        case .exact(let d), .unique(let d): return d
        case .none: throw ModelCacheError.notInCache(what)
        case .ambiguous(let some):
            throw ModelCacheError.invalidArgument("digest prefix '\(what)' is ambiguous (\(some.prefix(4).map { String($0.prefix(16)) + "…" }.joined(separator: ", "))): type more of it")
        }
    }
}
