/// Which new connections a listener keeps: at most `maxTotal` at once, and at most `maxPerAddress` from one remote
/// address, so that one host (a flood of idle sockets) cannot take every slot. A connection past either cap is
/// closed at once (refused fast) instead of holding a descriptor; `release` frees its slot when it closes.
public struct ConnectionGate: Sendable {
    public let maxTotal: Int
    public let maxPerAddress: Int
    public private(set) var total = 0
    private var perAddress: [String: Int] = [:]

    public init(maxTotal: Int, maxPerAddress: Int) {
        self.maxTotal = max(1, maxTotal)
        self.maxPerAddress = max(1, maxPerAddress)
    }

    /// The per-address share of a cap: a quarter of it, at least 8 (a Hub client opens several at once).
    public static func perAddressShare(of maxTotal: Int) -> Int { max(8, maxTotal / 4) }

    /// Takes a slot for a connection from `address`; false: close it now.
    public mutating func admit(_ address: String) -> Bool {
        let mine = perAddress[address, default: 0]
        guard total < maxTotal, mine < maxPerAddress else { return false }
        total += 1
        perAddress[address] = mine + 1
        return true
    }

    /// Frees the slot of an admitted connection.
    public mutating func release(_ address: String) {
        guard let mine = perAddress[address], mine > 0 else { return }
        total -= 1
        perAddress[address] = mine == 1 ? nil : mine - 1
    }

    public func count(of address: String) -> Int { perAddress[address, default: 0] }
}
