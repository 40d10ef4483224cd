import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ModelCacheCore
import NIOCore
import Synchronization

/// An in-process origin on 127.0.0.1, port 0, serving in-memory files with Range support and injectable faults.
/// Counts the body bytes it sends, so tests can prove what was (not) downloaded again.
final class TestOrigin: Sendable {
    enum Fault: Sendable, Equatable {
        /// Close the connection after this many body bytes, for the first `times` GETs.
        case dropAfter(bytes: Int, times: Int)
        /// Flip the byte at this absolute offset in every response that covers it.
        case flipByte(at: Int64)
        /// Answer this status to the first `times` requests (HEAD and GET), then behave.
        case failFirst(status: Int, times: Int)
        /// Always answer this status.
        case status(Int)
        /// No Accept-Ranges; every GET gets the whole body with 200.
        case ignoreRange
        /// Advertise Accept-Ranges but answer every GET with the whole body (a lying server).
        case ignoreRangeButAdvertise
        /// Send the body at about this many bytes per second.
        case trickle(bytesPerSecond: Int)
        /// Trickle (this many bytes per second) the first `times` GETs whose range starts at `offset`: one slow chunk.
        case trickleFrom(offset: Int64, bytesPerSecond: Int, times: Int)
        /// The first `times` GETs whose range holds `offset`: full speed up to it, then this many bytes per second (a
        /// transfer that stalls in the middle of a span of chunks).
        case slowFrom(offset: Int64, bytesPerSecond: Int, times: Int)
        /// Send this many body bytes, then nothing more (for up to 60 s) while keeping the connection open.
        case stallAfter(bytes: Int)
        /// All bodies together at most this many bytes per second (a shared uplink).
        case sharedRate(bytesPerSecond: Int)
        /// Each body at this average rate from its first byte, in 16 KiB pieces: pieces that fell due while the writer
        /// waited for a thread (a loaded machine) go out together, so the body keeps its rate.
        case pacedRate(bytesPerSecond: Int)
        /// A GET body (and its Content-Length) `extraBytes` longer than the HEAD said: a lying Content-Length.
        case longerGET(extraBytes: Int)
        /// Cut every body once this many body bytes were sent in all, and answer 503 afterwards: a server that died.
        case dieAfter(bytes: Int)
        /// Answer HEAD requests only after this long (an uplink that has gone silent, or a slow one).
        case silentHead(Duration)
    }

    struct State {
        var files: [String: [UInt8]] = [:]
        var faults: [(fault: Fault, path: String?)] = []
        var requests = 0
        var gets = 0
        var getPaths: [String] = []
        var getStarts: [Int64] = []
        /// Paths of requests that carried an Authorization header.
        var authorized: [String] = []
        var bytesServed: Int64 = 0
        var redirects: [String: String] = [:]
        var extraHeaders: [String: [(String, String)]] = [:]
        var killed = false
        var nextSlot = ContinuousClock.now
    }

    /// Reserves time on the shared uplink for `n` bytes; returns when they may be sent.
    private func reserve(_ n: Int, rate: Int) -> ContinuousClock.Instant {
        state.withLock { s in
            let start = max(s.nextSlot, .now)
            s.nextSlot = start + .nanoseconds(Int64(n) * 1_000_000_000 / Int64(rate))
            return start
        }
    }

    private let state = Mutex(State())
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)
    let port: Int

    var baseURL: String { "http://127.0.0.1:\(port)" }
    func url(_ path: String) -> String { baseURL + path }

    var bytesServed: Int64 { state.withLock { $0.bytesServed } }
    var requests: Int { state.withLock { $0.requests } }
    var gets: Int { state.withLock { $0.gets } }
    var getPaths: [String] { state.withLock { $0.getPaths } }
    /// The first byte each GET that reached the body asked for, in arrival order.
    var getStarts: [Int64] { state.withLock { $0.getStarts } }
    var authorizedPaths: [String] { state.withLock { $0.authorized } }
    func gets(under prefix: String) -> Int { state.withLock { $0.getPaths.filter { $0.hasPrefix(prefix) }.count } }

    func serve(_ path: String, _ bytes: [UInt8], headers: [(String, String)] = []) {
        state.withLock { $0.files[path] = bytes; $0.extraHeaders[path] = headers }
    }
    /// Serves `bytes` at `path` as the Hub serves an LFS file, their sha256 in `X-Linked-Etag`; returns the URL.
    @discardableResult
    func serveLinked(_ path: String, _ bytes: [UInt8]) -> String {
        serve(path, bytes, headers: [("X-Linked-Etag", "\"\(BlobDigest.of(bytes).hex)\"")])
        return url(path)
    }
    func redirect(_ path: String, to target: String) { state.withLock { $0.redirects[path] = target } }
    /// Adds a fault, for every path or only for paths starting with `path`.
    func inject(_ fault: Fault, path: String? = nil) { state.withLock { $0.faults.append((fault, path)) } }
    func clearFaults() { state.withLock { $0.faults = [] } }
    /// Waits (bounded, 10 s) until no body bytes have been sent for `quiet`: the writers of connections a test
    /// cut have noticed and stopped, so counters reset afterwards count only new requests.
    func waitUntilQuiet(for quiet: Duration = .milliseconds(200)) async throws {
        var last: Int64 = -1
        let deadline = ContinuousClock.now + .seconds(10)
        while bytesServed != last && ContinuousClock.now < deadline {
            last = bytesServed
            try await Task.sleep(for: quiet)
        }
    }

    func resetCounters() { state.withLock { $0.bytesServed = 0; $0.requests = 0; $0.gets = 0 } }

    static func start(port requested: Int = 0) async throws -> TestOrigin {
        let (stream, cont) = AsyncStream<Int>.makeStream()
        let box = Mutex<TestOrigin?>(nil)
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { req, _ in
            guard let origin = box.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            return try await origin.respond(req)
        }
        router.get("**", use: handler)
        router.head("**", use: handler)
        var logger = Logger(label: "test-origin")
        logger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: requested)),
            onServerRunning: { channel in cont.yield(channel.localAddress?.port ?? 0); cont.finish() },
            logger: logger)
        let task = Task { try await app.run() }
        var port = 0
        for await p in stream { port = p }
        let origin = TestOrigin(port: port)
        box.withLock { $0 = origin }
        origin.task.withLock { $0 = task }
        return origin
    }

    private init(port: Int) { self.port = port }

    /// Cuts every connection at once (bodies in flight end abruptly), then stops: the network went away.
    func kill() async {
        state.withLock { $0.killed = true }
        await stop()
    }

    func stop() async {
        let t = task.withLock { $0 }
        t?.cancel()
        _ = await t?.result
    }

    struct Dropped: Error {}

    func respond(_ req: Request) async throws -> Response {
        let path = req.uri.path
        let isHead = req.method == .head
        var slowChunk: Int? = nil
        var slowFrom: (offset: Int64, rate: Int)? = nil
        let (file, faults, redirect, extra, failStatus, dropAfter) = state.withLock { s -> ([UInt8]?, [Fault], String?, [(String, String)], Int?, Int?) in
            s.requests += 1
            if req.headers[.authorization] != nil { s.authorized.append(path) }
            if !isHead { s.gets += 1; s.getPaths.append(path) }
            var failStatus: Int? = nil
            var dropAfter: Int? = nil
            for (i, entry) in s.faults.enumerated() where entry.path.map({ path.hasPrefix($0) }) ?? true {
                switch entry.fault {
                case .failFirst(let status, let times) where times > 0:
                    failStatus = status
                    s.faults[i].fault = .failFirst(status: status, times: times - 1)
                case .status(let status):
                    failStatus = status
                case .dropAfter(let bytes, let times) where times > 0 && !isHead:
                    dropAfter = bytes
                    s.faults[i].fault = .dropAfter(bytes: bytes, times: times - 1)
                case .dieAfter(let bytes):
                    if s.bytesServed >= Int64(bytes) { failStatus = 503 }
                case .trickleFrom(let offset, let rate, let times) where times > 0 && !isHead:
                    if let f = s.files[path], case .range(let r) = ByteRangeRequest.parse(req.headers[.range], size: Int64(f.count)),
                       r.lowerBound == offset {
                        slowChunk = rate
                        s.faults[i].fault = .trickleFrom(offset: offset, bytesPerSecond: rate, times: times - 1)
                    }
                case .slowFrom(let offset, let rate, let times) where times > 0 && !isHead:
                    if let f = s.files[path], case .range(let r) = ByteRangeRequest.parse(req.headers[.range], size: Int64(f.count)),
                       r.contains(offset) {
                        slowFrom = (offset, rate)
                        s.faults[i].fault = .slowFrom(offset: offset, bytesPerSecond: rate, times: times - 1)
                    }
                default: break
                }
            }
            let active = s.faults.filter { $0.path.map { path.hasPrefix($0) } ?? true }.map(\.fault)
            return (s.files[path], active, s.redirects[path], s.extraHeaders[path] ?? [], failStatus, dropAfter)
        }
        if isHead, let silence = faults.compactMap({ f -> Duration? in if case .silentHead(let d) = f { return d }; return nil }).first {
            try await Task.sleep(for: silence)
        }
        if let failStatus { return Response(status: .init(code: failStatus)) }
        if let redirect {
            var h = HTTPFields()
            h[.location] = redirect
            for (k, v) in extra { h[HTTPField.Name(k)!] = v }
            return Response(status: .found, headers: h)
        }
        guard var bytes = file else { return Response(status: .notFound) }
        let size = Int64(bytes.count)
        let ignoreRange = faults.contains(.ignoreRange) || faults.contains(.ignoreRangeButAdvertise)
        var headers = HTTPFields()
        if !faults.contains(.ignoreRange) { headers[.acceptRanges] = "bytes" }
        headers[.eTag] = "\"v1-\(size)\""
        for (k, v) in extra { headers[HTTPField.Name(k)!] = v }
        var range: Range<Int64> = 0..<size
        var status = HTTPResponse.Status.ok
        if !ignoreRange {
            switch ByteRangeRequest.parse(req.headers[.range], size: size) {
            case .whole: break
            case .range(let r):
                range = r
                status = .partialContent
                headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound - 1)/\(size)"
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
        }
        for f in faults {
            if case .flipByte(let at) = f, range.contains(at) { bytes[Int(at)] ^= 0xff }
        }
        headers[.contentLength] = String(range.count)
        if isHead { return Response(status: status, headers: headers) }
        state.withLock { $0.getStarts.append(range.lowerBound) }
        var served = Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)])
        for case .longerGET(let extra) in faults {
            served += [UInt8](repeating: 0x4C, count: extra)
            headers[.contentLength] = String(served.count)
        }
        let body = served
        let bodyStart = range.lowerBound
        let slowTail = slowFrom
        let rate = slowChunk ?? faults.compactMap { f -> Int? in if case .trickle(let r) = f { return r }; return nil }.first
        let stallAt = faults.compactMap { f -> Int? in if case .stallAfter(let b) = f { return b }; return nil }.first
        let shared = faults.compactMap { f -> Int? in if case .sharedRate(let r) = f { return r }; return nil }.first
        let paced = faults.compactMap { f -> Int? in if case .pacedRate(let r) = f { return r }; return nil }.first
        return Response(status: status, headers: headers, body: ResponseBody { writer in
            let piece = rate.map { max(1024, $0 / 20) } ?? (shared != nil || paced != nil ? 16_384 : 65_536)
            let start = ContinuousClock.now
            var sent = 0
            while sent < body.count {
                var n = min(piece, body.count - sent)
                if let paced {
                    // Due: piece by piece from the start; whatever is overdue goes now, in one write.
                    try await Task.sleep(until: start + .nanoseconds(Int64(sent) * 1_000_000_000 / Int64(paced)), clock: .continuous)
                    let elapsed = start.duration(to: .now).components
                    let due = Int((Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18) * Double(paced))
                    n = min(body.count - sent, max(n, (due - sent) / piece * piece))
                }
                if let dropAfter { n = min(n, dropAfter - sent) }
                if n <= 0 || self.state.withLock({ $0.killed }) { throw Dropped() }
                if let dead = faults.compactMap({ f -> Int? in if case .dieAfter(let b) = f { return b }; return nil }).first {
                    let left = Int64(dead) - self.bytesServed
                    if left <= 0 { throw Dropped() }
                    n = min(n, Int(left))
                }
                if let stallAt, sent >= stallAt {
                    try await Task.sleep(for: .seconds(60))
                    throw Dropped()
                }
                if let stallAt { n = min(n, max(1, stallAt - sent)) }
                if let slowFrom = slowTail {
                    let fast = Int(slowFrom.offset - bodyStart)
                    n = sent < fast ? min(n, fast - sent) : min(n, max(1024, slowFrom.rate / 20))
                }
                if let shared { try await Task.sleep(until: self.reserve(n, rate: shared), clock: .continuous) }
                try await writer.write(ByteBuffer(bytes: body[sent..<sent + n]))
                sent += n
                self.state.withLock { $0.bytesServed += Int64(n) }
                if let rate { try await Task.sleep(for: .milliseconds(1000 * n / rate)) }
                if let slowFrom = slowTail, sent > Int(slowFrom.offset - bodyStart) {
                    try await Task.sleep(for: .milliseconds(1000 * n / slowFrom.rate))
                }
            }
            try await writer.finish(nil)
        })
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce: each step's 64-bit state, in memory order.
/// Written a word at a time: the byte-at-a-time loop it replaces took most of a second per few MiB in debug builds,
/// on a thread of the test run's shared pool, and the in-process servers of other tests starved meanwhile.
func testBytes(_ count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    guard count > 0 else { return [] }
    var x = seed
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        let out = UnsafeMutableRawBufferPointer(buffer)
        var i = 0
        while i < count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            let n = min(8, count - i)
            if n == 8 {
                out.storeBytes(of: x, toByteOffset: i, as: UInt64.self)
            } else {
                withUnsafeBytes(of: x) { w in
                    for k in 0..<n { out[i + k] = w[k] }
                }
            }
            i += n
        }
        initialized = count
    }
}
