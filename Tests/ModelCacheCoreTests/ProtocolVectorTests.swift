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

/// protocol/vectors/registry-v1.json (§16): routes, upstream selection, challenges.
@Suite struct RegistryVectorTests {
    struct Vectors: Decodable {
        struct RouteCase: Decodable { var path: String; var kind: String; var name: String?; var reference: String?; var code: String? }
        struct Selection: Decodable { var name: String; var ns: String?; var mirror: String?; var repository: String? }
        struct Challenge: Decodable { var header: String; var tokenURL: String? }
        var routes: [RouteCase]
        var mirrors: [String]
        var selections: [Selection]
        var challenges: [Challenge]
    }

    func load() throws -> Vectors {
        let data = try Data(contentsOf: ProtocolVectorTests.vectorsDir.appendingPathComponent("registry-v1.json"))
        return try JSONDecoder().decode(Vectors.self, from: data)
    }

    @Test func routes() throws {
        for c in try load().routes {
            let got = RegistryRoute.parse(path: c.path)
            switch c.kind {
            case "ping": #expect(got == .ping, "\(c.path)")
            case "manifest": #expect(got == .manifest(name: c.name ?? "", reference: try #require(RegistryReference(parsing: c.reference ?? ""))), "\(c.path)")
            case "blob": #expect(got == .blob(name: c.name ?? "", digest: try #require(RegistryName.digest(c.reference ?? ""))), "\(c.path)")
            case "unsupported": #expect(got == .unsupported, "\(c.path)")
            case "invalid":
                if case .invalid(let code, _)? = got { #expect(code == c.code, "\(c.path)") } else { Issue.record("\(c.path): \(String(describing: got))") }
            default: #expect(got == nil, "\(c.path)")
            }
        }
    }

    @Test func selectionsAndChallenges() throws {
        let v = try load()
        let mirrors = try RegistryMirrors(parsing: v.mirrors)
        for s in v.selections {
            let got = mirrors.select(name: s.name, ns: RegistryRoute.namespace(query: s.ns.map { "ns=" + $0 }))
            if let name = s.mirror, let repo = s.repository, let m = mirrors.mirrors.first(where: { $0.name == name }) {
                #expect(got == .mirror(m, repository: repo), "\(s.name) \(s.ns ?? "-")")
            } else {
                #expect(got == .unknownNamespace(RegistryRoute.namespace(query: s.ns.map { "ns=" + $0 }) ?? ""), "\(s.name)")
            }
        }
        for c in v.challenges {
            #expect(AuthChallenge.parse(c.header).first?.tokenURL(scope: "repository:library/ubuntu:pull") == c.tokenURL, "\(c.header)")
        }
    }
}
