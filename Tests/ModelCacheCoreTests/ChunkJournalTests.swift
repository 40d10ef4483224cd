import Testing
@testable import ModelCacheCore

@Suite struct ChunkJournalTests {
    let d1 = BlobDigest.of(Array("one".utf8))
    let d2 = BlobDigest.of(Array("two".utf8))

    @Test func roundTrips() {
        let text = ChunkJournal.line(chunk: 0, digest: d1) + ChunkJournal.line(chunk: 7, digest: d2)
        #expect(ChunkJournal.parse(text, chunkCount: 8) == [0: d1, 7: d2])
    }

    @Test func dropsATornLastLine() {
        let full = ChunkJournal.line(chunk: 0, digest: d1)
        let torn = String(ChunkJournal.line(chunk: 1, digest: d2).dropLast(5))
        #expect(ChunkJournal.parse(full + torn, chunkCount: 8) == [0: d1])
    }

    @Test func dropsLinesWithBadCRCOrIndex() {
        var line = ChunkJournal.line(chunk: 2, digest: d1)
        line = line.replacingOccurrences(of: " 2 ", with: " 3 ")
        let flipped = "3" + ChunkJournal.line(chunk: 2, digest: d1).dropFirst()
        #expect(ChunkJournal.parse(flipped, chunkCount: 8).isEmpty)
        #expect(ChunkJournal.parse(ChunkJournal.line(chunk: 9, digest: d1), chunkCount: 8).isEmpty)
        #expect(ChunkJournal.parse("garbage\n\n1 2 3\n", chunkCount: 8).isEmpty)
    }

    @Test func crcIsZlibs() {
        // CRC-32 of "123456789" is the standard check value 0xcbf43926.
        #expect(ChunkJournal.crc32(of: "123456789") == 0xcbf4_3926)
    }
}

import Foundation
