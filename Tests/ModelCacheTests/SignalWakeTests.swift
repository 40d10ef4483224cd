import Foundation
import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import Synchronization
import Testing
@testable import ModelCache
import ModelCacheCore

/// Readers of a download in progress (the in-order hasher, the Hub stream, the availability long-poll) sleep on the
/// download's signal and wake once per newly verified chunk: no polling loop.
@Suite struct SignalWakeTests {
    static let url = "http://127.0.0.1:1/wake"

    static func openPartial(_ env: TestEnvironment, _ bytes: [UInt8]) throws -> PartialDownload {
        let meta = PartialDownload.Meta(url: url, size: Int64(bytes.count), chunkSize: TestEnvironment.chunk,
                                        etag: nil, lastModified: nil, expected: BlobDigest.of(bytes))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try PartialDownload.open(in: env.store, meta: meta, logger: logger).0
    }

    /// Writes one chunk's bytes and records it verified, as a fetch worker does.
    static func verify(_ p: PartialDownload, chunk: Int, of bytes: [UInt8]) throws {
        let r = p.layout.range(of: chunk)
        let slice = Array(bytes[Int(r.lowerBound)..<Int(r.upperBound)])
        try slice.withUnsafeBytes { buffer in try p.write(buffer, at: r.lowerBound) }
        try p.recordVerified(chunk: chunk, digest: BlobDigest.of(slice))
    }

    /// Waits (bounded, in the test only) until a reader is parked on the signal after exactly `suspensions` sleeps.
    static func parked(_ s: ChangeSignal, suspensions: Int) async throws {
        for _ in 0..<5_000 where !(s.waiterCount == 1 && s.suspensions == suspensions) {
            try await Task.sleep(for: .milliseconds(1))
        }
        try #require(s.waiterCount == 1 && s.suspensions == suspensions)
    }

    @Test func inOrderHasherSleepsUntilTheChunkItNeedsIsVerified() async throws {
        let env = try TestEnvironment()
        let bytes = testBytes(3 * Int(TestEnvironment.chunk))
        let p = try Self.openPartial(env, bytes)
        let hasher = Task { try await p.hashInOrder() }
        try await Self.parked(p.changes, suspensions: 1)  // asleep, waiting for chunk 0
        try await Task.sleep(for: .milliseconds(50))
        #expect(p.changes.suspensions == 1)  // nothing woke it: no timer turns
        try Self.verify(p, chunk: 1, of: bytes)  // out of order: it wakes, finds chunk 0 still missing, sleeps again
        try await Self.parked(p.changes, suspensions: 2)
        try Self.verify(p, chunk: 0, of: bytes)  // hashes chunks 0 and 1, then sleeps for chunk 2
        try await Self.parked(p.changes, suspensions: 3)
        try Self.verify(p, chunk: 2, of: bytes)
        #expect(try await hasher.value == BlobDigest.of(bytes))
        #expect(p.changes.suspensions == 3)  // one sleep per chunk it had to wait for
        await env.close()
    }

    @Test func hubStreamSendsEachChunkWhenItIsVerified() async throws {
        let env = try TestEnvironment()
        let chunk = Int(TestEnvironment.chunk)
        let bytes = testBytes(3 * chunk)
        let d = BlobDigest.of(bytes)
        let p = try Self.openPartial(env, bytes)
        let active = ActiveDownloads()
        active.register(d, partial: p, url: Self.url, shared: false)
        let finish = ChangeSignal()
        let flight = await HubFlights().flight("wake", spawn: { work in Task { await work() }; return true }) {
            await finish.wait(since: 0)
            throw CancellationError()
        }
        var stream = HubStream(store: env.store, active: active, digest: d, url: Self.url, flight: flight)
        stream.safetyNet = .seconds(60)  // so that every wake-up counted below comes from a signal
        let sink = Sink()
        let body = stream.body(0..<Int64(bytes.count))
        let reading = Task { try await body.write(sink) }

        try await Self.parked(p.changes, suspensions: 1)  // nothing verified yet: asleep
        #expect(sink.bytes.isEmpty)
        try Self.verify(p, chunk: 0, of: bytes)
        try await Self.parked(p.changes, suspensions: 2)  // woke, sent chunk 0, asleep again
        #expect(sink.bytes == Array(bytes[0..<chunk]))
        try Self.verify(p, chunk: 1, of: bytes)
        try await Self.parked(p.changes, suspensions: 3)
        #expect(sink.bytes == Array(bytes[0..<2 * chunk]))
        try Self.verify(p, chunk: 2, of: bytes)
        try await Self.parked(p.changes, suspensions: 4)
        #expect(sink.bytes == Array(bytes.dropLast()))  // the last byte waits for the whole-file check
        p.markWholeVerified()
        try await reading.value
        #expect(sink.bytes == bytes)
        #expect(p.changes.suspensions == 4)  // one sleep per change it waited for, no timer turns
        finish.notify()
        _ = try? await flight.value()
        await env.close()
    }

    @Test func availabilityLongPollWakesWhenAChunkSettles() async throws {
        let env = try TestEnvironment()
        let bytes = testBytes(2 * Int(TestEnvironment.chunk))
        let d = BlobDigest.of(bytes)
        let p = try Self.openPartial(env, bytes)
        let active = ActiveDownloads()
        active.register(d, partial: p, url: Self.url)
        active.claim(d, 0)
        let api = PeerAPI(store: env.store, nodeID: "0123456789abcdef", name: "test",
                          uploads: UploadLimiter(limit: 1), active: active, logger: Logger(label: "test"))
        let before = active.version
        let poll = Task { try await api.availability(d.hex, after: before) }
        for _ in 0..<5_000 where active.changes.waiterCount == 0 { try await Task.sleep(for: .milliseconds(1)) }
        try #require(active.changes.waiterCount == 1)  // the long-poll sleeps on the signal
        try Self.verify(p, chunk: 0, of: bytes)
        active.settle(d, 0)
        let response = try await poll.value
        let sink = Sink()
        try await response.body.write(sink)
        let a = try JSONDecoder().decode(ActiveDownloads.Availability.self, from: Data(sink.bytes))
        #expect(a.version == before + 1)
        #expect(try ChunkSet(hex: a.have, capacity: 2).contains(0))
        #expect(active.changes.suspensions == 1)  // woken once, by the settle
        await env.close()
    }
}

/// A response body writer that keeps what it is given.
private final class Sink: ResponseBodyWriter, Sendable {
    private let box = Mutex<[UInt8]>([])
    var bytes: [UInt8] { box.withLock { $0 } }
    func write(_ buffer: ByteBuffer) async throws { box.withLock { $0 += Array(buffer.readableBytesView) } }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
