import ModelCacheCore
import Testing

private func bytes(_ strings: [String]) -> [[UInt8]] { strings.map { Array($0.utf8) } }

private let goodID = "0123456789abcdef"
private let good = ["txtvers=1", "pv=1", "id=\(goodID)", "cv=42"]

@Suite struct PeerTXTTests {
    @Test func encodesInOrderWithTxtversFirst() throws {
        let txt = try #require(PeerTXT(nodeID: goodID, catalogueVersion: 42))
        #expect(txt.encode() == good)
        #expect(txt.encode().allSatisfy { $0.utf8.count <= PeerTXT.maxStringLength })
    }

    @Test func roundTrips() throws {
        for cv: UInt64 in [0, 1, 42, UInt64.max] {
            let txt = try #require(PeerTXT(nodeID: "ffffffffffffffff", catalogueVersion: cv, protocolVersion: .max))
            #expect(PeerTXT.parse(bytes(txt.encode())) == txt)
        }
    }

    @Test func parsesInAnyOrderAndIgnoresUnknownKeys() throws {
        let expected = try #require(PeerTXT(nodeID: goodID, catalogueVersion: 42))
        #expect(PeerTXT.parse(bytes(good.reversed())) == expected)
        #expect(PeerTXT.parse(bytes(["x=y", "flag", ""] + good + ["org.freedesktop.Avahi.cookie=123"])) == expected)
        // Keys are case-insensitive (RFC 6763 §6.4); values are not.
        #expect(PeerTXT.parse(bytes(["TXTVERS=1", "Pv=1", "ID=\(goodID)", "cV=42"])) == expected)
    }

    @Test func rejectsBadNodeIDsAtInit() {
        #expect(PeerTXT(nodeID: "0123456789ABCDEF", catalogueVersion: 0) == nil)
        #expect(PeerTXT(nodeID: "0123", catalogueVersion: 0) == nil)
        #expect(PeerTXT(nodeID: "0123456789abcdeg", catalogueVersion: 0) == nil)
        #expect(PeerTXT(nodeID: "", catalogueVersion: 0) == nil)
        #expect(PeerTXT(nodeID: "0123456789abcdé", catalogueVersion: 0) == nil)
    }

    @Test func randomNodeIDsAreValid() {
        var g = SplitMix64(seed: 7)
        for _ in 0..<100 { #expect(PeerTXT.isValidNodeID(PeerTXT.randomNodeID(using: &g))) }
        #expect(PeerTXT.isValidNodeID(PeerTXT.randomNodeID()))
        var zero = ZeroGenerator()
        #expect(PeerTXT.randomNodeID(using: &zero) == "0000000000000000")
    }

    @Test(arguments: [
        // missing keys
        [String](),
        ["pv=1", "id=\(goodID)", "cv=42"],
        ["txtvers=1", "id=\(goodID)", "cv=42"],
        ["txtvers=1", "pv=1", "cv=42"],
        ["txtvers=1", "pv=1", "id=\(goodID)"],
        // wrong txtvers
        ["txtvers=2", "pv=1", "id=\(goodID)", "cv=42"],
        ["txtvers=0", "pv=1", "id=\(goodID)", "cv=42"],
        ["txtvers=", "pv=1", "id=\(goodID)", "cv=42"],
        ["txtvers=one", "pv=1", "id=\(goodID)", "cv=42"],
        // no '=' on one of our keys (boolean attribute)
        ["txtvers", "pv=1", "id=\(goodID)", "cv=42"],
        ["txtvers=1", "pv=1", "id", "cv=42"],
        // duplicate keys, equal or not
        good + ["cv=43"],
        good + ["id=\(goodID)"],
        good + ["TXTVERS=1"],
        // bad values
        ["txtvers=1", "pv=1", "id=0123456789ABCDEF", "cv=42"],
        ["txtvers=1", "pv=1", "id=0123456789abcde", "cv=42"],
        ["txtvers=1", "pv=1", "id=0123456789abcdef0", "cv=42"],
        ["txtvers=1", "pv=1", "id= 123456789abcdef", "cv=42"],
        ["txtvers=1", "pv=1", "id=\(goodID)", "cv=-1"],
        ["txtvers=1", "pv=1", "id=\(goodID)", "cv=+1"],
        ["txtvers=1", "pv=1", "id=\(goodID)", "cv=1.0"],
        ["txtvers=1", "pv=1", "id=\(goodID)", "cv="],
        ["txtvers=1", "pv=1", "id=\(goodID)", "cv=18446744073709551616"],  // UInt64.max + 1
        ["txtvers=1", "pv=1", "id=\(goodID)", "cv=99999999999999999999999"],
        ["txtvers=1", "pv=65536", "id=\(goodID)", "cv=1"],
        ["txtvers=1", "pv=x", "id=\(goodID)", "cv=1"],
        ["txtvers=1", "pv=1=1", "id=\(goodID)", "cv=1"],
    ])
    func rejectsUnusableRecords(_ strings: [String]) {
        #expect(PeerTXT.parse(bytes(strings)) == nil)
    }

    @Test func rejectsHugeValuesAndHugeRecords() {
        let hugeCV = "cv=" + String(repeating: "9", count: 100_000)
        #expect(PeerTXT.parse(bytes(["txtvers=1", "pv=1", "id=\(goodID)", hugeCV])) == nil)
        // A string longer than a DNS character-string cannot be genuine, even for an unknown key.
        let hugeUnknown = "x=" + String(repeating: "a", count: 256)
        #expect(PeerTXT.parse(bytes(good + [hugeUnknown])) == nil)
        let max255 = "x=" + String(repeating: "a", count: 253)
        #expect(PeerTXT.parse(bytes(good + [max255])) != nil)
        // Too many strings.
        #expect(PeerTXT.parse(bytes(good + (0..<100).map { "k\($0)=v" })) == nil)
    }

    @Test func survivesNonUTF8AndControlBytes() {
        let idWithBadByte: [UInt8] = Array("id=0123456789abcde".utf8) + [0xFF]
        #expect(PeerTXT.parse([Array("txtvers=1".utf8), Array("pv=1".utf8), idWithBadByte, Array("cv=1".utf8)]) == nil)
        let cvWithNUL: [UInt8] = Array("cv=1".utf8) + [0x00]
        #expect(PeerTXT.parse([Array("txtvers=1".utf8), Array("pv=1".utf8), Array("id=\(goodID)".utf8), cvWithNUL]) == nil)
        // Junk in unknown keys is ignored.
        let junk: [[UInt8]] = [[0xFF, 0xFE, 0x3D, 0x00], [0xC3], [0x3D], [0x3D, 0x3D, 0x3D], Array(repeating: 0x80, count: 255)]
        #expect(PeerTXT.parse(junk + bytes(good)) != nil)
        // Non-ASCII look-alike of a key (fullwidth "ｉｄ") is not our key.
        #expect(PeerTXT.parse(bytes(["txtvers=1", "pv=1", "ｉｄ=\(goodID)", "cv=1"])) == nil)
    }

    @Test func survivesRandomBytes() {
        var g = SplitMix64(seed: 0xC0FFEE)
        for _ in 0..<2000 {
            let count = Int(g.next() % 8)
            var strings: [[UInt8]] = []
            for _ in 0..<count {
                let len = Int(g.next() % 300)
                strings.append((0..<len).map { _ in
                    // Bias towards '=', hex digits and key letters so parsing gets deep.
                    let r = g.next()
                    switch r % 4 {
                    case 0: return UInt8(ascii: "=")
                    case 1: return Array("0123456789abcdef".utf8)[Int(r >> 8) % 16]
                    case 2: return Array("txtvrespidc".utf8)[Int(r >> 8) % 11]
                    default: return UInt8(truncatingIfNeeded: r >> 8)
                    }
                })
            }
            if let txt = PeerTXT.parse(strings) {
                #expect(PeerTXT.isValidNodeID(txt.nodeID))
            }
        }
    }
}

/// Deterministic generator for tests (also used by HashWindowTests).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private struct ZeroGenerator: RandomNumberGenerator {
    mutating func next() -> UInt64 { 0 }
}
