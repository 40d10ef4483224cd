import Foundation
import Logging
import Testing
@testable import ModelCache
import ModelCacheCore

/// A stored blob's answer on the peer API (`RangedAnswer.blob`): headers, 206, 416, and 503 once every upload slot
/// is taken; a HEAD needs no slot.
@Suite struct BlobAnswerTests {
    @Test func theBlobAnswerCarriesItsDigestAndRefusesPastItsEndOrWithoutASlot() async throws {
        let env = try TestEnvironment()
        let bytes = testBytes(1000)
        let file = env.dir + "/b.bin"
        try PosixFile.writeAtomically(file, bytes)
        let record = try env.store.importFile(file, url: "http://o/b", chunkSize: TestEnvironment.chunk)
        let uploads = UploadLimiter(limit: 1)
        let api = PeerAPI(store: env.store, nodeID: "0123456789abcdef", name: "test", uploads: uploads, logger: Logger(label: "test"))
        let hex = record.sha256.hex

        #expect(uploads.tryAcquire())  // the only slot is taken
        let busy = try api.blob(hex, range: "bytes=0-9", head: false)
        #expect(busy.status == .serviceUnavailable && busy.headers[.retryAfter] == "1")
        let head = try api.blob(hex, range: "bytes=0-9", head: true)
        #expect(head.status == .partialContent && head.headers[.contentLength] == "10")
        #expect(head.headers[.eTag] == "\"\(hex)\"" && head.headers[.contentType] == "application/octet-stream")
        let beyond = try api.blob(hex, range: "bytes=5000-", head: false)
        #expect(beyond.status == .rangeNotSatisfiable && beyond.headers[.contentRange] == "bytes */1000")
        uploads.release()

        let part = try api.blob(hex, range: "bytes=10-19", head: false)
        #expect(part.status == .partialContent && part.headers[.contentRange] == "bytes 10-19/1000")
        #expect(uploads.tryAcquire() == false)  // the answer holds the slot until its body is sent
        await env.close()
    }
}
