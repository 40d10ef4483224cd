import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing
@testable import ModelCache
import ModelCacheCore

/// The origin and peer client's batched body reads (`ReadBatchingHandler`, SO_RCVLOWAT) on real sockets: a paced
/// body arrives in fewer, larger reads, and no body, however it ends, waits for bytes that will not come.
@Suite(.serialized) struct ReadBatchingClientTests {
    /// A client as the fetch engine makes it, with a read timeout that turns a held-back body end into a failure.
    static func client(readTimeout: TimeAmount = .seconds(30)) -> OriginClient {
        OriginClient(http: HTTPClient.forModelCache(readTimeout: readTimeout), logger: Logger(label: "test"))
    }

    /// Fetches `range` of `url` (after a probe); returns the pieces the sink got, and the error if it failed.
    static func fetch(_ client: OriginClient, _ url: String, range: Range<Int64>? = nil) async -> (bytes: [UInt8], reads: Int, error: (any Error)?) {
        var bytes: [UInt8] = []
        var reads = 0
        do {
            let info = try await client.probe(url)
            try await client.fetch(url: url, range: range, info: info) { buffer, _ in
                reads += 1
                bytes += buffer.readableBytesView
            }
            return (bytes, reads, nil)
        } catch {
            return (bytes, reads, error)
        }
    }

    @Test func aPacedBodyArrivesInFewerLargerReads() async throws {
        let origin = try await TestOrigin.start()
        let client = Self.client()
        let data = testBytes(4 << 20, seed: 11)
        origin.serve("/paced.bin", data)
        // 16 KiB pieces at 8 MB/s, one every 2 ms: 256 pieces, each one read of its own without batching (measured
        // on the idle machine: 256 reads; 236-244 in the loaded full suite). Batched: 20 ms of bytes, at most a
        // quarter of the receive buffer (128 KiB at first on loopback, then grown by the kernel): 2 pieces or more per
        // read once the rate is known (measured: 94 reads idle, 187 in the loaded full suite). The body keeps its
        // rate on a loaded machine (`pacedRate`): one paced by a starved writer ran so slowly (under 800 KB/s) that
        // batching rightly stayed off, and the test failed on one core.
        origin.inject(.pacedRate(bytesPerSecond: 8_000_000))
        let got = await Self.fetch(client, origin.url("/paced.bin"))
        #expect(got.error.map { "\($0)" } == nil)
        #expect(got.bytes == data)
        #expect(got.reads < 230, "\(got.reads) reads for 256 pieces")
        try await client.http.shutdown()
        await origin.stop()
    }

    /// One keep-alive connection: a batched body, then a short body, the probe's HEAD, a 404 with a short body and
    /// a last byte range, each answered at once (a mark left over from the big body would hold them until the read
    /// timeout, which is short here).
    @Test func answersAfterABatchedBodyOnTheSameConnectionAreNotHeldBack() async throws {
        let origin = try await TestOrigin.start()
        let client = Self.client(readTimeout: .seconds(3))
        let big = testBytes(4 << 20, seed: 12)
        let small = Array("thirteen byte".utf8)
        origin.serve("/big.bin", big)
        origin.serve("/small.txt", small)
        origin.inject(.sharedRate(bytesPerSecond: 16_000_000), path: "/big.bin")
        let first = await Self.fetch(client, origin.url("/big.bin"))
        #expect(first.error.map { "\($0)" } == nil)
        #expect(first.bytes == big)
        let second = await Self.fetch(client, origin.url("/small.txt"))
        #expect(second.error.map { "\($0)" } == nil)
        #expect(second.bytes == small)
        let missing = await Self.fetch(client, origin.url("/missing.bin"))
        #expect("\(missing.error.map { "\($0)" } ?? "")".contains("404"))
        let tail = await Self.fetch(client, origin.url("/big.bin"), range: Int64(big.count - 10)..<Int64(big.count))
        #expect(tail.error.map { "\($0)" } == nil)
        #expect(tail.bytes == Array(big.suffix(10)))
        // The same again, with the big body's last bytes only a few KiB after a large mark would have been set.
        let again = await Self.fetch(client, origin.url("/big.bin"), range: 0..<Int64((1 << 20) + 5000))
        #expect(again.error.map { "\($0)" } == nil)
        #expect(again.bytes == Array(big.prefix((1 << 20) + 5000)))
        #expect(origin.requests >= 9)  // every answer above really came from the origin
        try await client.http.shutdown()
        await origin.stop()
    }

    /// A server that closes mid-body: the client hears of it at once (the close wakes the reader whatever the
    /// mark), not after its read timeout, and gets no byte the server did not send.
    @Test func aBodyCutMidwayFailsAtOnce() async throws {
        let origin = try await TestOrigin.start()
        let client = Self.client(readTimeout: .seconds(30))
        let data = testBytes(4 << 20, seed: 13)
        origin.serve("/cut.bin", data)
        origin.inject(.sharedRate(bytesPerSecond: 16_000_000))
        origin.inject(.dropAfter(bytes: 3_000_000, times: 1))
        let started = ContinuousClock.now
        let got = await Self.fetch(client, origin.url("/cut.bin"))
        let took = ContinuousClock.now - started
        #expect(got.error != nil)
        #expect(got.bytes.count <= 3_000_000)
        #expect(got.bytes == Array(data.prefix(got.bytes.count)))
        #expect(took < .seconds(20), "the cut was noticed after \(took): by the read timeout?")
        try await client.http.shutdown()
        await origin.stop()
    }

    @Test func onlyAnExactContentLengthCounts() {
        func head(_ status: HTTPResponseStatus, _ fields: [(String, String)]) -> HTTPResponseHead {
            HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(fields))
        }
        #expect(ReadBatchingHandler.bodyLength(head(.ok, [("Content-Length", "1048576")]), isHeadRequest: false) == 1_048_576)
        #expect(ReadBatchingHandler.bodyLength(head(.partialContent, [("Content-Length", "0")]), isHeadRequest: false) == 0)
        #expect(ReadBatchingHandler.bodyLength(head(.ok, [("Content-Length", "1048576")]), isHeadRequest: true) == nil)
        #expect(ReadBatchingHandler.bodyLength(head(.noContent, [("Content-Length", "10")]), isHeadRequest: false) == nil)
        #expect(ReadBatchingHandler.bodyLength(head(.notModified, [("Content-Length", "10")]), isHeadRequest: false) == nil)
        #expect(ReadBatchingHandler.bodyLength(head(.continue, [("Content-Length", "10")]), isHeadRequest: false) == nil)
        #expect(ReadBatchingHandler.bodyLength(head(.ok, [("Transfer-Encoding", "chunked"), ("Content-Length", "10")]), isHeadRequest: false) == nil)
        #expect(ReadBatchingHandler.bodyLength(head(.ok, []), isHeadRequest: false) == nil)
        for bad in ["", "+5", "-5", "1,1", "5 5", "0x10", "99999999999999999999", "9223372036854775808"] {
            #expect(ReadBatchingHandler.bodyLength(head(.ok, [("Content-Length", bad)]), isHeadRequest: false) == nil, "\(bad)")
        }
        #expect(ReadBatchingHandler.bodyLength(head(.ok, [("Content-Length", "5"), ("Content-Length", "5")]), isHeadRequest: false) == nil)
    }
}
