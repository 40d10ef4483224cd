import Testing
@testable import ModelCacheCore

@Suite struct ChunkLayoutTests {
    @Test func cutsIntoFixedChunksWithShortLast() throws {
        let l = try ChunkLayout(size: 10 * 1024 * 1024 + 5, chunkSize: 4 * 1024 * 1024)
        #expect(l.count == 3)
        #expect(l.range(of: 0) == 0..<4_194_304)
        #expect(l.range(of: 2) == 8_388_608..<10_485_765)
        #expect(l.length(of: 2) == 2_097_157)
    }

    @Test func exactMultipleAndEmpty() throws {
        #expect(try ChunkLayout(size: 8 * 1024 * 1024).count == 2)
        #expect(try ChunkLayout(size: 0).count == 0)
        #expect(try ChunkLayout(size: 1).count == 1)
    }

    @Test(arguments: [0, 1000, 3 * 1024 * 1024, 128 * 1024 * 1024, 8 * 1024] as [Int64])
    func rejectsBadChunkSizes(_ c: Int64) {
        #expect(throws: ModelCacheError.self) { try ChunkLayout(size: 10, chunkSize: c) }
    }

    @Test func chunksCoveringARange() throws {
        let l = try ChunkLayout(size: 100_000, chunkSize: 16_384)
        #expect(l.chunks(covering: 0..<1) == 0..<1)
        #expect(l.chunks(covering: 16_383..<16_385) == 0..<2)
        #expect(l.chunks(covering: 99_000..<100_000) == 6..<7)
        #expect(l.chunks(covering: 5..<5).isEmpty)
    }
}
