import Testing
@testable import ModelCacheCore

@Suite struct ChunkSetTests {
    @Test func insertContainsRemove() {
        var s = ChunkSet(capacity: 10)
        let first = s.insert(3)
        let second = s.insert(3)
        #expect(first)
        #expect(!second)
        #expect(s.contains(3) && !s.contains(4) && !s.contains(99) && !s.contains(-1))
        #expect(s.count == 1)
        s.remove(3)
        #expect(s.count == 0 && !s.contains(3))
    }

    @Test func hexRoundTripHighBitFirst() throws {
        var s = ChunkSet(capacity: 12)
        for i in [0, 1, 9, 11] { s.insert(i) }
        #expect(s.hex == "c050")
        #expect(try ChunkSet(hex: "c050", capacity: 12) == s)
    }

    @Test func rejectsBadBitmaps() {
        #expect(throws: ModelCacheError.self) { try ChunkSet(hex: "c0", capacity: 12) }
        #expect(throws: ModelCacheError.self) { try ChunkSet(hex: "zz50", capacity: 12) }
        // Bit 12 set although only 12 chunks exist.
        #expect(throws: ModelCacheError.self) { try ChunkSet(hex: "0008", capacity: 12) }
    }

    @Test func contiguousPrefixAndFull() {
        var s = ChunkSet(capacity: 5)
        s.insert(0); s.insert(1); s.insert(3)
        #expect(s.contiguousPrefix == 2)
        #expect(!s.isComplete)
        #expect(ChunkSet.full(5).isComplete && ChunkSet.full(5).contiguousPrefix == 5)
    }
}
