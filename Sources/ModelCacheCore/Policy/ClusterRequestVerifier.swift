/// Decides whether a request to a keyed node comes from a member (protocol §14): a signature by the cluster's key
/// over the method, path and query, a time within ±`window` seconds of the node's clock, and a nonce not seen before.
/// Pure: the caller gives the clock (`now`, Unix seconds) and keeps the value (behind a lock) between requests.
///
/// Replays: every accepted nonce is remembered until its time leaves the window (a replay after that is stale
/// anyway). The memory is bounded (`maxNonces`); when it is full the oldest entry is dropped and the floor rises to
/// its time: a request no newer than the floor is refused as stale, so a dropped nonce can never be replayed.
public struct ClusterRequestVerifier: Sendable {
    public enum Refusal: String, Sendable, Equatable {
        /// No signature headers at all.
        case missing
        /// Headers present but unusable (time not a number, nonce not 32 lowercase hex, signature not 64 hex).
        case malformed
        /// The time is more than `window` seconds in the past (or no newer than the floor).
        case stale
        /// The time is more than `window` seconds ahead.
        case future
        /// Not signed by this cluster's key.
        case badSignature = "bad-signature"
        /// This nonce was accepted before.
        case replay

        /// The one-line message of the 401.
        public var message: String {
            switch self {
            case .missing: "this node answers members of its cluster only: sign requests with the cluster key (serve --cluster-key-file)"
            case .malformed: "the cluster signature headers are malformed: sign requests as protocol §14 says"
            case .stale: "the request's cluster time is too old: check this machine's clock (within 60 s of the node's) and retry"
            case .future: "the request's cluster time is in the future: check this machine's clock (within 60 s of the node's)"
            case .badSignature: "the request is not signed with this node's cluster key: give both nodes the same --cluster-key-file"
            case .replay: "this signed request was already used once: send a new one (a fresh nonce)"
            }
        }
    }

    public let key: ClusterKey
    public let window: Int64
    public let maxNonces: Int
    /// Accepted nonces in arrival order with their times; `head` is the oldest still kept.
    private var order: [(nonce: String, time: Int64)] = []
    private var head = 0
    private var seen: [String: Int64] = [:]
    /// Requests with a time at or below this are refused (raised when a live entry had to be dropped).
    public private(set) var floor: Int64 = .min

    public init(key: ClusterKey, window: Int64 = 60, maxNonces: Int = 65_536) {
        self.key = key
        self.window = max(1, window)
        self.maxNonces = max(1, maxNonces)
    }

    /// Nonces remembered now.
    public var remembered: Int { seen.count }

    /// nil: accepted (and the nonce remembered). The headers are the raw values, nil when absent.
    public mutating func check(method: String, target: String, time rawTime: String?, nonce: String?, signature: String?,
                               now: Int64) -> Refusal? {
        guard rawTime != nil || nonce != nil || signature != nil else { return .missing }
        guard let rawTime, let nonce, let signature,
              let time = Self.decimal(rawTime),
              nonce.utf8.count == ClusterKey.nonceLength, Hex.decode(nonce) != nil,
              signature.utf8.count == 64, let mac = Hex.decode(signature) else { return .malformed }
        expire(now: now)
        if time < now - window || time <= floor { return .stale }
        if time > now + window { return .future }
        guard key.validRequest(method: method, target: target, time: time, nonce: nonce, signature: mac) else { return .badSignature }
        if seen[nonce] != nil { return .replay }
        remember(nonce, time: time)
        return nil
    }

    /// Drops nonces whose time has left the window: a request carrying them would be refused as stale.
    mutating func expire(now: Int64) {
        // Arrival order is close to time order; entries are dropped from the front while old. A late, older entry
        // behind a newer one waits its turn (bounded by maxNonces anyway).
        while head < order.count, order[head].time < now - window {
            seen[order[head].nonce] = nil
            head += 1
        }
        compact()
    }

    mutating func remember(_ nonce: String, time: Int64) {
        if seen.count >= maxNonces, head < order.count {
            let dropped = order[head]
            seen[dropped.nonce] = nil
            head += 1
            floor = max(floor, dropped.time)
        }
        seen[nonce] = time
        order.append((nonce, time))
        compact()
    }

    private mutating func compact() {
        if head > 1024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }

    /// Plain decimal digits, optionally a leading minus, at most 18 digits (no overflow).
    static func decimal(_ s: String) -> Int64? {
        let u = Array(s.utf8)
        let negative = u.first == UInt8(ascii: "-")
        let digits = negative ? Array(u.dropFirst()) : u
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var v: Int64 = 0
        for b in digits {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            v = v * 10 + Int64(b - UInt8(ascii: "0"))
        }
        return negative ? -v : v
    }
}
