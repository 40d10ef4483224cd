import Crypto
import Foundation
import Testing
@testable import ModelCacheCore

/// Checks the test vectors in protocol/vectors/ (generated independently, with Python's hashlib and zlib).
@Suite struct ProtocolVectorTests {
    struct Vector: Decodable {
        var size: Int64
        var chunkSize: Int64
        var manifest: Manifest
        var manifestJSON: String
        var journalLine0: String
    }

    static let vectorsDir = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("protocol/vectors")

    func load() throws -> Vector {
        let data = try Data(contentsOf: Self.vectorsDir.appendingPathComponent("manifest-v1.json"))
        return try JSONDecoder().decode(Vector.self, from: data)
    }

    @Test func manifestOfGeneratedFileMatchesVector() throws {
        let v = try load()
        let bytes = (0..<Int(v.size)).map { UInt8($0 % 251) }
        let layout = try ChunkLayout(size: v.size, chunkSize: v.chunkSize)
        let chunks = (0..<layout.count).map { i in
            let r = layout.range(of: i)
            return BlobDigest.of(bytes[Int(r.lowerBound)..<Int(r.upperBound)])
        }
        let m = try Manifest(sha256: BlobDigest.of(bytes), layout: layout, chunks: chunks)
        #expect(m == v.manifest)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(String(decoding: try encoder.encode(m), as: UTF8.self) == v.manifestJSON)
    }

    @Test func journalLineMatchesVector() throws {
        let v = try load()
        #expect(ChunkJournal.line(chunk: 0, digest: v.manifest.chunks[0]) == v.journalLine0)
    }

    @Test func manifestRejectsWrongChunkCountAndVersion() throws {
        let v = try load()
        var json = v.manifestJSON.replacingOccurrences(of: "\"version\":1", with: "\"version\":2")
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Manifest.self, from: Data(json.utf8)) }
        json = v.manifestJSON.replacingOccurrences(of: "\"size\":8389608", with: "\"size\":99999999")
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Manifest.self, from: Data(json.utf8)) }
    }
}
