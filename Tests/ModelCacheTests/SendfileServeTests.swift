import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing
@testable import ModelCache
import ModelCacheCore

/// A node sends committed blobs with sendfile(2) (issue 12 §2): the bytes equal the file for every kind of range,
/// under many concurrent requests; the upload slot and the file come back when a client leaves mid-body; the upload
/// rate limit still sees every byte; and only a marker this process registered is ever replaced by a file region.
@Suite struct SendfileServeTests {
    /// More than two 4 MiB regions, and not a multiple of anything.
    static let size = 9 * 1024 * 1024 + 12_345

    func get(_ http: HTTPClient, _ url: String, method: HTTPMethod = .GET, range: String? = nil) async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        var req = HTTPClientRequest(url: url)
        req.method = method
        if let range { req.headers.add(name: "Range", value: range) }
        let res = try await http.execute(req, timeout: .seconds(30))
        let body = Array(buffer: try await res.body.collect(upTo: 64 << 20))
        return (Int(res.status.code), res.headers, body)
    }

    @Test func wholeRangedSuffixAndHeadAnswersAreTheFileBytes() async throws {
        let n = try await TestNode.start()
        let bytes = testBytes(Self.size, seed: 12)
        try n.holds(bytes, url: "http://example.invalid/sendfile")
        let url = n.address.blobURL(BlobDigest.of(bytes))
        let before = n.node.sendfileBytes.value

        let whole = try await get(n.env.http, url)
        #expect(whole.status == 200)
        #expect(whole.body == bytes)
        let cases: [(String, Range<Int>)] = [
            ("bytes=0-0", 0..<1), ("bytes=100-4194403", 100..<4_194_404), ("bytes=4194304-8388608", 4_194_304..<8_388_609),
            ("bytes=-5000", Self.size - 5000..<Self.size), ("bytes=9000000-", 9_000_000..<Self.size),
            ("bytes=5-\(Self.size * 2)", 5..<Self.size),
        ]
        var sent = Int64(bytes.count)
        for (header, r) in cases {
            let part = try await get(n.env.http, url, range: header)
            #expect(part.status == 206, "\(header)")
            #expect(part.headers.first(name: "Content-Range") == "bytes \(r.lowerBound)-\(r.upperBound - 1)/\(Self.size)", "\(header)")
            #expect(part.body == Array(bytes[r]), "\(header)")
            sent += Int64(r.count)
        }
        let head = try await get(n.env.http, url, method: .HEAD, range: "bytes=10-19")
        #expect(head.status == 206)
        #expect(head.headers.first(name: "Content-Length") == "10")
        #expect(head.body.isEmpty)
        let beyond = try await get(n.env.http, url, range: "bytes=\(Self.size)-")
        #expect(beyond.status == 416)
        #expect(beyond.headers.first(name: "Content-Range") == "bytes */\(Self.size)")
        // These bytes went as file regions.
        #expect(n.node.sendfileBytes.value - before == sent)
        // Every request of the transfer used one kept record.
        #expect(n.node.peerAPI.records.count == 1)
        await n.stop()
    }

    @Test func manyConcurrentRangesEachGetTheirBytes() async throws {
        let n = try await TestNode.start()
        let bytes = testBytes(Self.size, seed: 13)
        try n.holds(bytes, url: "http://example.invalid/concurrent")
        let url = n.address.blobURL(BlobDigest.of(bytes))
        // Spread over the file, from one byte to 6 MiB (crossing region ends), start and end included.
        var ranges: [Range<Int>] = [0..<Self.size, Self.size - 1..<Self.size]
        for i in 1...22 {
            let a = (i * 1_234_567) % Self.size
            ranges.append(a..<min(Self.size, a + 1 + (i * i * 98_765) % (6 << 20)))
        }
        let http = n.env.http
        try await withThrowingTaskGroup(of: (Range<Int>, Int, [UInt8]).self) { group in
            for r in ranges {
                group.addTask {
                    let res = try await get(http, url, range: "bytes=\(r.lowerBound)-\(r.upperBound - 1)")
                    return (r, res.status, res.body)
                }
            }
            for try await (r, status, body) in group {
                // 503 is the node's answer past its upload slots; every answer with bytes has the right ones.
                #expect(status == 206 || status == 503, "\(r)")
                if status == 206 { #expect(body == Array(bytes[r]), "\(r)") }
            }
        }
        #expect(n.node.peerAPI.uploads.current == 0)
        await n.stop()
    }

    /// How a client stops mid-body: a reset (the node's next write fails at once: the slot and the file come back),
    /// or a half-close (the node sees the end of the request stream while a region is queued: the client still reads,
    /// so it gets the whole body, and then the slot and the file come back).
    enum Leaving: String, CaseIterable, Sendable { case reset, halfClose }

    @Test(arguments: Leaving.allCases) func aClientLeavingMidBodyGivesBackItsSlotAndTheFile(_ leaving: Leaving) async throws {
        let n = try await TestNode.start()
        let bytes = testBytes(32 << 20, seed: 14)
        try n.holds(bytes, url: "http://example.invalid/leaver")
        let d = BlobDigest.of(bytes)
        let path = n.env.store.blobPath(d)
        // A client that reads the head and a little of the body, then leaves. A small receive window, so that the
        // kernel's buffers cannot take the whole body while the client sleeps.
        let client = try #require(RawHTTPConnection.open(port: n.port, receiveWindow: 64 << 10))
        #expect(client.send("GET", "/v1/blobs/\(d.hex)"))
        for _ in 0..<100 where client.unread < 200_000 {
            guard await client.receive() else { break }
        }
        #expect(client.unread >= 200_000)
        #expect(n.node.peerAPI.uploads.current == 1)
        #expect(Self.openDescriptors(of: path) >= 1)
        switch leaving {
        case .reset:
            var lingerOff = linger(l_onoff: 1, l_linger: 0)
            setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &lingerOff, socklen_t(MemoryLayout<linger>.size))
            client.close()
        case .halfClose:
            #expect(shutdown(client.fd, Int32(SHUT_WR)) == 0)
            let rest = await client.answer()
            #expect(rest?.status == 200)
            #expect(rest?.body == bytes)
        }
        for _ in 0..<250 where n.node.peerAPI.uploads.current != 0 || Self.openDescriptors(of: path) != 0 {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(n.node.peerAPI.uploads.current == 0)
        #expect(Self.openDescriptors(of: path) == 0)
        client.close()
        // The node still serves the blob.
        let again = try await get(n.env.http, n.address.blobURL(d), range: "bytes=0-99")
        #expect(again.body == Array(bytes[0..<100]))
        await n.stop()
    }

    /// One keep-alive connection carries ranged GETs sent as file regions, HEADs with Range (clamped to the file,
    /// and one past its end) and a plain route after them: each answer is framed exactly (a HEAD brings no body
    /// bytes, a GET exactly its range), and nothing stalls between them.
    @Test func oneKeepAliveConnectionCarriesRegionsHeadsAndOtherRoutes() async throws {
        let n = try await TestNode.start()
        let bytes = testBytes(Self.size, seed: 18)
        try n.holds(bytes, url: "http://example.invalid/keepalive")
        let path = "/v1/blobs/\(BlobDigest.of(bytes).hex)"
        let max = TrapTests.int64Max
        let before = n.node.sendfileBytes.value
        let client = try #require(RawHTTPConnection.open(port: n.port))
        // (method, Range header, status, the bytes a GET gets)
        let steps: [(String, String?, Int, Range<Int>?)] = [
            ("GET", "bytes=100-4194403", 206, 100..<4_194_404),  // across a region's end
            ("HEAD", "bytes=10-19", 206, nil),
            ("HEAD", "bytes=0-\(max)", 206, nil),
            ("GET", "bytes=\(Self.size - 10)-\(max)", 206, Self.size - 10..<Self.size),
            ("HEAD", "bytes=\(max)-\(max)", 416, nil),
            ("GET", "bytes=0-0", 206, 0..<1),
            ("GET", nil, 200, 0..<Self.size),
            ("HEAD", nil, 200, nil),
        ]
        var sent = 0
        for (method, range, status, expected) in steps {
            #expect(client.send(method, path, headers: range.map { [("Range", $0)] } ?? []))
            let a = try #require(await client.answer(head: method == "HEAD"), "\(method) \(range ?? "")")
            #expect(a.status == status, "\(method) \(range ?? "")")
            if let expected {
                #expect(a.body == Array(bytes[expected]), "\(method) \(range ?? "")")
                sent += expected.count
            } else if status == 206 {
                #expect(a.headers["content-length"] == (range == "bytes=10-19" ? "10" : String(Self.size)), "\(method) \(range ?? "")")
            }
        }
        #expect(client.send("GET", "/v1/info"))
        let info = try #require(await client.answer())
        #expect(info.status == 200)
        #expect(String(decoding: info.body, as: UTF8.self).contains("\"catalogueVersion\""))
        #expect(client.unread == 0)  // no stray body bytes after any HEAD
        #expect(n.node.sendfileBytes.value - before == Int64(sent))  // every GET's bytes went as file regions
        #expect(n.node.peerAPI.uploads.current == 0)
        client.close()
        await n.stop()
    }

    @Test func aBlobEvictedMidTransferIsStillSentWhole() async throws {
        let n = try await TestNode.start()
        let bytes = testBytes(Self.size, seed: 15)
        try n.holds(bytes, url: "http://example.invalid/evicted")
        let d = BlobDigest.of(bytes)
        var req = HTTPClientRequest(url: n.address.blobURL(d))
        req.method = .GET
        let res = try await n.env.http.execute(req, timeout: .seconds(30))
        var body: [UInt8] = []
        var dropped = false
        for try await part in res.body {
            body += Array(buffer: part)
            if !dropped {
                try n.env.store.drop(d)  // unlinks the file while its fd is open
                dropped = true
            }
        }
        #expect(dropped)
        #expect(body == bytes)
        let gone = try await get(n.env.http, n.address.blobURL(d))
        #expect(gone.status == 404)
        await n.stop()
    }

    @Test func theUploadRateLimitSeesEveryByte() async throws {
        let n = try await TestNode.start(maxUploadRate: 64 << 20)
        let bytes = testBytes(3 << 20, seed: 16)
        try n.holds(bytes, url: "http://example.invalid/limited")
        let limiter = try #require(n.node.peerAPI.uploadLimiter)
        let before = limiter.consumed
        let whole = try await get(n.env.http, n.address.blobURL(BlobDigest.of(bytes)))
        #expect(whole.body == bytes)
        let part = try await get(n.env.http, n.address.blobURL(BlobDigest.of(bytes)), range: "bytes=1000-1999999")
        #expect(part.body == Array(bytes[1000..<2_000_000]))
        #expect(limiter.consumed - before == Int64(bytes.count + 1_999_000))
        await n.stop()
    }

    /// The Hugging Face endpoint sends with sendfile too: cold (from the partial file as chunks verify), warm (the
    /// stored blob, with Range).
    @Test func hubEndpointStreamsColdAndWarmWithSendfile() async throws {
        let bytes = testBytes(3 << 20, seed: 17)
        let t = try await TestHubNode.start(serving: bytes, trickle: 8_000_000)
        let (env, node, url) = (t.env, t.node, t.fileURL)

        let cold = try await get(env.http, url)
        #expect(cold.status == 200)
        #expect(cold.body == bytes)
        #expect(node.sendfileBytes.value == Int64(bytes.count))
        let job = try #require(await node.jobs.list().first)
        #expect(try await node.jobs.waitUntilFinal(job.id).state == .success)
        let warm = try await get(env.http, url, range: "bytes=1000-2999999")
        #expect(warm.status == 206)
        #expect(warm.body == Array(bytes[1000..<3_000_000]))
        #expect(node.sendfileBytes.value == Int64(bytes.count + 2_999_000))
        await t.stop()
    }

    /// The handler replaces only a registered marker: another empty buffer, a buffer with the same (empty) contents,
    /// or a marker of a closed connection passes unchanged.
    @Test func onlyARegisteredMarkerBecomesAFileRegion() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sendfile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/f"
        try PosixFile.writeAtomically(path, testBytes(10_000))
        let channel = NIOAsyncTestingChannel()
        let handler = SendfileHandler(eventLoop: channel.eventLoop)
        let sender = handler.sender
        try await channel.pipeline.addHandler(handler)
        #expect(await ServingConnection(channel: channel).sender() === sender)  // the route finds it through the channel
        #expect(await ServingConnection.unknown.sender() == nil)
        let file = try OpenFile(path: path)

        // The route's side: markers through a writer that records them; returns once every region was written.
        let recorder = Recorder()
        let sending = Task {
            var w: any ResponseBodyWriter = RecordingWriter(recorder: recorder)
            try await sender.send(file, 100..<9_100, to: &w, regionSize: 4_000, ahead: 3)
        }
        for _ in 0..<500 where sender.pendingCount < 3 { try await Task.sleep(for: .milliseconds(10)) }
        let markers = recorder.buffers.withLock { $0 }
        #expect(markers.count == 3)
        #expect(markers.allSatisfy { $0.readableBytes == 0 })
        #expect(sender.pendingCount == 3)

        try await channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer())))  // not a marker
        for m in markers { try await channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(m))) }
        try await channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(markers[0])))  // already used
        var regions: [Range<Int>] = []
        var buffers = 0
        while let part = try await channel.readOutbound(as: HTTPServerResponsePart.self) {
            guard case .body(let data) = part else { continue }
            switch data {
            case .fileRegion(let r): regions.append(r.readerIndex..<r.endIndex)
            case .byteBuffer(let b): #expect(b.readableBytes == 0); buffers += 1
            }
        }
        #expect(regions == [100..<4_100, 4_100..<8_100, 8_100..<9_100])
        #expect(buffers == 2)
        #expect(sender.pendingCount == 0)
        try await sending.value

        // After the connection closed, nothing is registered and the route hears it.
        _ = try await channel.finish()
        #expect(await ServingConnection(channel: channel).sender() == nil)  // the connection is gone: its sender with it
        sender.close()
        await #expect(throws: (any Error).self) {
            var w: any ResponseBodyWriter = RecordingWriter(recorder: recorder)
            try await sender.send(file, 0..<10, to: &w)
        }
        #expect(sender.pendingCount == 0)
    }

    /// Counts this process's descriptors open on `path`.
    static func openDescriptors(of path: String) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == path }.count
    }
}

/// A response body writer that keeps what it is given.
struct RecordingWriter: ResponseBodyWriter {
    let recorder: Recorder
    func write(_ buffer: ByteBuffer) async throws { recorder.buffers.withLock { $0.append(buffer) } }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

final class Recorder: Sendable {
    let buffers = Mutex<[ByteBuffer]>([])
}
