/// Finds the one name a user meant by typing its start, as git and docker take unique prefixes of ids and digests.
public enum UniquePrefix: Equatable, Sendable {
    case exact(String)
    case unique(String)
    case none
    /// Several names start with the prefix (sorted, the first few).
    case ambiguous([String])

    /// An exact name wins over longer names that start with it; an empty prefix matches nothing.
    public static func match(_ prefix: String, in names: [String], minimumLength: Int = 1) -> UniquePrefix {
        guard prefix.count >= max(1, minimumLength) else { return .none }
        if names.contains(prefix) { return .exact(prefix) }
        let hits = Array(Set(names.filter { $0.hasPrefix(prefix) })).sorted()
        switch hits.count {
        case 0: return .none
        case 1: return .unique(hits[0])
        default: return .ambiguous(Array(hits.prefix(8)))
        }
    }
}
