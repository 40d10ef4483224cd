import Testing
@testable import ModelCacheCore

@Suite struct BlobDigestTests {
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    @Test func hashesKnownVector() {
        #expect(BlobDigest.of(Array("abc".utf8)).hex == abc)
    }

    @Test func acceptsUppercaseAndPrefix() throws {
        #expect(try BlobDigest(validating: abc.uppercased()).hex == abc)
        #expect(try BlobDigest(validating: "sha256:" + abc).hex == abc)
    }

    @Test(arguments: ["", "abc", String(repeating: "g", count: 64), String(repeating: "a", count: 63),
                      String(repeating: "a", count: 65), "sha256:", " " + String(repeating: "a", count: 63)])
    func rejectsMalformed(_ text: String) {
        #expect(throws: ModelCacheError.malformedDigest(text)) { try BlobDigest(validating: text) }
        #expect(BlobDigest(ifValid: text) == nil)
    }

    @Test func rawBytesRoundTrip() throws {
        let d = try BlobDigest(raw: (0..<32).map { UInt8($0) })
        #expect(d.hex == "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        #expect(throws: ModelCacheError.self) { try BlobDigest(raw: [1, 2, 3]) }
    }
}
