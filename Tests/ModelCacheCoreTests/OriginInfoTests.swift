import Foundation
import Testing
@testable import ModelCacheCore

@Suite struct OriginInfoTests {
    let sha = "3f2b9e8a1c1d8b1a4b8f1d8e0f6a7c5b2e9d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"

    @Test func huggingFaceRedirectKeepsLinkedEtagAndSize() {
        let hops = [
            OriginInfo.Hop(url: "https://huggingface.co/m/resolve/main/w.safetensors", status: 302, headers: [
                ("X-Linked-Etag", "\"\(sha)\""), ("X-Linked-Size", "123456"), ("X-Repo-Commit", "abc"),
                ("Location", "https://cdn.example/w?sig=1"), ("ETag", "W/\"deadbeef\"")]),
            OriginInfo.Hop(url: "https://cdn.example/w?sig=1", status: 200, headers: [
                ("Content-Length", "123456"), ("Accept-Ranges", "bytes"), ("ETag", "\"cdn-etag\""),
                ("Last-Modified", "Tue, 01 Jan 2030 00:00:00 GMT")]),
        ]
        let info = OriginInfo.from(hops: hops)
        #expect(info.digest?.hex == sha)
        #expect(info.size == 123_456)
        #expect(info.acceptsRanges)
        #expect(info.finalURL == "https://cdn.example/w?sig=1")
        #expect(info.etag == "\"cdn-etag\"")
    }

    @Test func reprDigestRFC9530() {
        let raw = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        let d = OriginInfo.parseReprDigest("sha-512=:AAAA:, sha-256=:\(raw):")
        #expect(d?.hex == "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        #expect(OriginInfo.parseReprDigest("sha-256=:bm90MzJieXRlcw==:") == nil)
        #expect(OriginInfo.parseReprDigest("md5=:AAAA:") == nil)
    }

    @Test func plainServerWithoutRangesOrDigest() {
        let info = OriginInfo.from(hops: [.init(url: "http://h/f", status: 200, headers: [("content-length", "10")])])
        #expect(info.size == 10 && !info.acceptsRanges && info.digest == nil)
    }

    @Test func etagNormalisation() {
        #expect(OriginInfo.normalizeETag("W/\"abc\"") == "abc")
        #expect(OriginInfo.normalizeETag("\"abc\"") == "abc")
        #expect(OriginInfo.normalizeETag("abc") == "abc")
    }

    @Test func contentRangeParsing() {
        #expect(ContentRange(parsing: "bytes 0-99/1000") == ContentRange(first: 0, last: 99, total: 1000))
        #expect(ContentRange(parsing: "bytes 5-9/*")?.total == nil)
        #expect(ContentRange(parsing: "bytes 9-5/10") == nil)
        #expect(ContentRange(parsing: "items 0-1/2") == nil)
        #expect(ContentRange(parsing: "bytes 0-1/x") == nil)
    }

    @Test func rangeRequestParsing() {
        #expect(ByteRangeRequest.parse(nil, size: 10) == .whole)
        #expect(ByteRangeRequest.parse("bytes=0-4", size: 10) == .range(0..<5))
        #expect(ByteRangeRequest.parse("bytes=5-", size: 10) == .range(5..<10))
        #expect(ByteRangeRequest.parse("bytes=-3", size: 10) == .range(7..<10))
        #expect(ByteRangeRequest.parse("bytes=8-100", size: 10) == .range(8..<10))
        #expect(ByteRangeRequest.parse("bytes=10-", size: 10) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=5-4", size: 10) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=a-b", size: 10) == .unsatisfiable)
        #expect(ByteRangeRequest.parse("bytes=0-1,3-4", size: 10) == .whole)
    }
}
