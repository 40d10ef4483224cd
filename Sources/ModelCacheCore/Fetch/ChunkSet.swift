/// A set of chunk indices as a bitmap: which chunks of a blob a node holds verified.
/// Encoded on the wire as lowercase hex of the bitmap bytes, chunk 0 in the high bit of byte 0.
public struct ChunkSet: Hashable, Sendable {
    public private(set) var count: Int
    public let capacity: Int
    private var bits: [UInt8]

    public init(capacity: Int) {
        self.capacity = capacity
        self.bits = [UInt8](repeating: 0, count: (capacity + 7) / 8)
        self.count = 0
    }

    public static func full(_ capacity: Int) -> ChunkSet {
        var s = ChunkSet(capacity: capacity)
        for i in 0..<capacity { s.insert(i) }
        return s
    }

    public func contains(_ i: Int) -> Bool {
        guard i >= 0 && i < capacity else { return false }
        return bits[i >> 3] & (0x80 >> UInt8(i & 7)) != 0
    }

    @discardableResult
    public mutating func insert(_ i: Int) -> Bool {
        precondition(i >= 0 && i < capacity, "chunk \(i) out of 0..<\(capacity)")
        if contains(i) { return false }
        bits[i >> 3] |= (0x80 >> UInt8(i & 7))
        count += 1
        return true
    }

    public mutating func remove(_ i: Int) {
        guard contains(i) else { return }
        bits[i >> 3] &= ~(0x80 >> UInt8(i & 7))
        count -= 1
    }

    public var isComplete: Bool { count == capacity }
    public var isEmpty: Bool { count == 0 }
    public var indices: [Int] { (0..<capacity).filter(contains) }

    /// The length of the run of chunks 0..<n all present.
    public var contiguousPrefix: Int {
        var n = 0
        while n < capacity && contains(n) { n += 1 }
        return n
    }

    public var hex: String { bits.hexString }

    public init(hex: String, capacity: Int) throws(ModelCacheError) {
        let expected = (capacity + 7) / 8
        let utf8 = Array(hex.utf8)
        guard utf8.count == expected * 2 else {
            throw .protocolViolation("chunk bitmap has \(utf8.count / 2) bytes, expected \(expected)")
        }
        var s = ChunkSet(capacity: capacity)
        for byteIndex in 0..<expected {
            guard let hi = hexValue(utf8[2 * byteIndex]), let lo = hexValue(utf8[2 * byteIndex + 1]) else {
                throw .protocolViolation("chunk bitmap is not hex")
            }
            let byte = hi << 4 | lo
            for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 {
                let i = byteIndex * 8 + bit
                guard i < capacity else { throw .protocolViolation("chunk bitmap sets chunk \(i) past the end") }
                s.insert(i)
            }
        }
        self = s
    }
}

func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}
