import AsyncHTTPClient
import Foundation
import Logging
import ModelCacheCore
import NIOCore
import NIOHTTP1

/// Talks to a running node over its control socket (what `modelcache fetch` does when a node runs on the cache).
public struct ControlClient: Sendable {
    public let socketPath: String
    let http: HTTPClient

    public init(socketPath: String, http: HTTPClient) {
        self.socketPath = socketPath
        self.http = http
    }

    func url(_ path: String) -> String {
        let encoded = socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketPath
        return "http+unix://\(encoded)\(path)"
    }

    /// True when a node answers on the socket.
    public func isNodeRunning() async -> Bool {
        guard PosixFile.exists(socketPath) else { return false }
        do {
            let res = try await http.execute(HTTPClientRequest(url: url("/v1/local/info")), timeout: .seconds(2))
            _ = try await res.body.collect(upTo: 1 << 16)
            return res.status == .ok
        } catch { return false }
    }

    public func createJob(id: String? = nil, title: String? = nil, requests: [Job.Request], downloadTotal: Int64 = 0,
                          connections: Int? = nil) async throws -> Job {
        let body = ControlAPI.CreateJob(id: id, title: title,
                                        requests: requests.map { .init(url: $0.url, sha256: $0.sha256?.hex, origin: $0.origin) },
                                        downloadTotal: downloadTotal, connections: connections)
        return try await send("/v1/local/jobs", method: .POST, body: try JSONEncoder().encode(body))
    }

    public func job(_ id: String) async throws -> Job { try await send("/v1/local/jobs/\(escape(id))") }
    public func jobs() async throws -> [Job] { try await send("/v1/local/jobs") }
    /// Forgets the node's finished jobs; returns how many.
    public func clearFinishedJobs() async throws -> Int {
        let r: [String: Int] = try await send("/v1/local/jobs/clear", method: .POST)
        return r["cleared"] ?? 0
    }
    public func abort(_ id: String) async throws -> Job { try await send("/v1/local/jobs/\(escape(id))/abort", method: .POST) }
    public func pin(_ what: String, _ pinned: Bool) async throws -> BlobRecord {
        try await send("/v1/local/pin", method: .POST, body: try JSONEncoder().encode(ControlAPI.PinBody(what: what, pinned: pinned)))
    }

    /// `add`, `rm`, `verify` through the node (it holds the cache's lock). Hashing a large file takes a while.
    public func importFile(_ file: String, url: String?, sha256: BlobDigest?) async throws -> BlobRecord {
        try await send("/v1/local/add", method: .POST, timeout: .hours(6),
                       body: try JSONEncoder().encode(ControlAPI.AddBody(file: file, url: url, sha256: sha256?.hex)))
    }
    public func remove(_ what: String) async throws -> BlobRecord {
        try await send("/v1/local/rm", method: .POST, body: try JSONEncoder().encode(ControlAPI.RemoveBody(what: what)))
    }
    public func verify() async throws -> [Store.VerifyReport] { try await send("/v1/local/verify", method: .POST, timeout: .hours(24)) }

    func escape(_ id: String) -> String { id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id }

    func send<T: Decodable>(_ path: String, method: HTTPMethod = .GET, timeout: TimeAmount = .seconds(60), body: Data? = nil) async throws -> T {
        var req = HTTPClientRequest(url: url(path))
        req.method = method
        if let body {
            req.headers.add(name: "Content-Type", value: "application/json")
            req.body = .bytes(ByteBuffer(bytes: body))
        }
        let res = try await http.execute(req, timeout: timeout)
        let bytes = try await res.body.collect(upTo: 16 << 20)
        if (200...299).contains(Int(res.status.code)) {
            let d = JSONDecoder()
            d.dateDecodingStrategy = .deferredToDate
            return try d.decode(T.self, from: Data(buffer: bytes))
        }
        if let e = try? JSONDecoder().decode(PeerAPI.ErrorBody.self, from: Data(buffer: bytes)) {
            throw NodeError(code: e.error.code, message: e.error.message)
        }
        throw NodeError(code: "node-error", message: "the node answered \(res.status.code)")
    }

    /// Follows a job's event stream, calling `update` for each state, until the job is final. Returns it.
    /// A stream that goes quiet (a paused job sends nothing, and the client's read time-out fires) or closes early is
    /// opened again (it starts with the job's current state), for as long as the job runs; only a node that cannot be
    /// reached `reconnects` times in a row ends the wait with an error.
    /// `stop`: return this (unfinished) state of the job at once when it holds.
    public func follow(_ id: String, reconnects: Int = 5, stop: @Sendable (Job) -> Bool = { _ in false },
                       update: @Sendable (Job) -> Void = { _ in }) async throws -> Job {
        var failures = 0
        while true {
            try Task.checkCancellation()
            var heard = false
            do {
                if let done = try await followOnce(id, heard: &heard, stop: stop, update: update) { return done }
            } catch let e as NodeError {
                throw e
            } catch {
                if Task.isCancelled { throw CancellationError() }
                if !heard {
                    failures += 1
                    guard failures < max(1, reconnects) else {
                        throw NodeError(code: "node-error", message: "lost the node while following job \(id) (\(error)): check it runs, then: modelcache wait \(id)")
                    }
                    try await Task.sleep(for: .milliseconds(250 * failures))
                }
            }
            if heard { failures = 0 }
        }
    }

    /// One event stream: the final job, or nil when the stream ended before it (then `follow` opens another).
    func followOnce(_ id: String, heard: inout Bool, stop: @Sendable (Job) -> Bool, update: @Sendable (Job) -> Void) async throws -> Job? {
        let res = try await http.execute(HTTPClientRequest(url: url("/v1/local/jobs/\(escape(id))/events")), timeout: .hours(24 * 365))
        guard res.status == .ok else {
            let bytes = try await res.body.collect(upTo: 1 << 20)
            if let e = try? JSONDecoder().decode(PeerAPI.ErrorBody.self, from: Data(buffer: bytes)) {
                throw NodeError(code: e.error.code, message: e.error.message)
            }
            throw NodeError(code: "node-error", message: "the node answered \(res.status.code)")
        }
        var pending = ""
        var last: Job? = nil
        for try await buffer in res.body {
            pending += String(buffer: buffer)
            while let end = pending.range(of: "\n\n") {
                let event = pending[..<end.lowerBound]
                pending = String(pending[end.upperBound...])
                for line in event.split(separator: "\n") where line.hasPrefix("data: ") {
                    if let j = try? JSONDecoder().decode(Job.self, from: Data(line.dropFirst(6).utf8)) {
                        last = j
                        heard = true
                        update(j)
                        if stop(j) { return j }
                    }
                }
            }
            if let last, last.state.isFinal { return last }
        }
        return last.flatMap { $0.state.isFinal ? $0 : nil }
    }

    public func peers() async throws -> [PeerDirectory.Status] {
        let res = try await http.execute(HTTPClientRequest(url: url("/v1/local/peers")), timeout: .seconds(10))
        return try JSONDecoder().decode([PeerDirectory.Status].self, from: Data(buffer: try await res.body.collect(upTo: 16 << 20)))
    }
}

/// An error reported by the node, carrying its stable code.
public struct NodeError: Error, CustomStringConvertible, Sendable {
    public var code: String
    public var message: String
    public var description: String { message }

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var exitCode: Int32 {
        switch code {
        case "malformed-url", "malformed-digest", "bad-request", "invalid-argument": 64
        case "bad-status": 3
        case "fetch-error", "no-source", "peer-rejected": 4
        case "io-error": 74
        case "download-total-exceeded": 6
        case "disk-full", "quota-exceeded": 6
        case "not-found": 2
        case "no-node": 7
        case "read-only": 77
        case "aborted": 130
        default: 5
        }
    }
}
