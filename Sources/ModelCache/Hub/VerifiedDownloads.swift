import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ModelCacheCore
import Synchronization

/// The one code path for "a client streams a verified blob as it arrives", shared by the Hugging Face endpoint
/// (protocol §13) and the registry mirror (§16): one download per file however many clients ask (`HubFlights`), a
/// public file as one of the node's jobs, a private one fetched with the client's credentials and kept off the
/// catalogue, the bytes streamed as their chunks are verified and the last byte only after the whole-blob check
/// (`HubStream`), and a client whose download failed gets the whole file again on its Range retry.
final class VerifiedDownloads: Sendable {
    /// What a client wants streamed.
    struct Want: Sendable {
        var url: String
        /// The trusted digest (an LFS file's, a registry blob's); nil for a Hub file known only by its git ETag.
        var sha256: BlobDigest?
        var isPublic: Bool
        /// The client's own `Authorization`, used for a private file only.
        var auth: String?
        /// The job's title (status page, `modelcache jobs`).
        var title: String
        /// Whether the origin may be asked (false: known down, peers only, without a job that would wait for it).
        var useOrigin: Bool
    }

    let node: Node
    let flights = HubFlights()
    let logger: Logger
    /// Files whose download failed while bytes of it were being streamed: clients may hold bytes that the failed
    /// check did not vouch for, so their Range resumes get the whole file instead (in memory; a few URLs).
    let tainted = Mutex<Set<String>>([])

    init(node: Node, logger: Logger) {
        self.node = node
        self.logger = logger
    }

    var store: Store { node.store }

    /// After a failed download: logged, and the file's Range resumes get the whole file (see `HubStream`).
    func taint(_ url: String) -> @Sendable (any Error) -> Void {
        { [self] error in
            logger.warning("download failed; clients that got part of it will get the whole file again",
                           metadata: ["url": "\(url)", "error": "\(error)"])
            tainted.withLock { _ = $0.insert(url) }
        }
    }

    /// Starts (or joins) the node's download of a file. A public file becomes one of the node's jobs (listed on the
    /// status page and by `modelcache jobs`, resumed after a restart, paused while offline); its download goes on
    /// when the client leaves. A private file is fetched with the client's credentials, kept off the catalogue, and
    /// is not a job (a job is persisted, a token must not be). With the origin known down, the file comes from
    /// peers directly. `learned` runs with the result before any waiting client hears of it.
    func start(_ want: Want, learned: @escaping @Sendable (FetchResult) throws -> Void = { _ in }) async -> HubFlights.Flight {
        let key = want.isPublic ? want.url : want.url + "\u{0}" + (want.auth ?? "")
        let viaJob = want.isPublic && want.useOrigin
        return await flights.flight(key, spawn: node.jobs.spawn, onFailure: taint(want.url)) { [node, store, logger] in
            let result: FetchResult
            if viaJob {
                let job = try await node.jobs.create(id: nil, title: want.title, requests: [Job.Request(url: want.url, sha256: want.sha256)])
                let done = try await node.jobs.waitUntilFinal(job.id)
                guard done.state == .success, let d = done.requests.first?.result, let record = try store.lookup(digest: d) else {
                    throw HubStream.Interrupted(detail: "job \(job.id) for \(want.url) ended: \(done.failureReason?.rawValue ?? "") \(done.message ?? "")")
                }
                result = .hit(record)
            } else {
                var request = FetchRequest(url: want.url, expected: want.sha256, useOrigin: want.useOrigin)
                request.isPrivate = !want.isPublic
                if !want.isPublic, let auth = want.auth { request.originHeaders = [("Authorization", auth)] }
                logger.info("file fetch for a client", metadata: ["title": "\(want.title)", "url": "\(want.url)", "private": "\(request.isPrivate)"])
                result = try await node.fetch(request)
            }
            try learned(result)
            return result
        }
    }

    /// The answer to a GET or HEAD of a file of `size` bytes: the stored blob's bytes, or the download's as they are
    /// verified (started or joined here). `unsatisfiable` words the endpoint's 416.
    func answer(_ want: Want, size: Int64, blob: BlobRecord?, request: Request, connection: ServingConnection, headers: HTTPFields,
                notStored: (() throws -> Response)? = nil,
                learned: @escaping @Sendable (FetchResult) throws -> Void = { _ in },
                unsatisfiable: (HTTPFields) throws -> Response) async throws -> Response {
        let isHead = request.method == .head
        let status: HTTPResponse.Status
        let range: Range<Int64>
        var headers = headers
        switch RangedAnswer.decide(size: size, rangeHeader: request.headers[.range], headers: headers,
                                   ignoreRange: isHead || tainted.withLock({ $0.contains(want.url) })) {
        case .serve(let s, let h, let r): (status, headers, range) = (s, h, r)
        case .unsatisfiable(let h): return try unsatisfiable(h)
        }
        if isHead || range.isEmpty { return Response(status: status, headers: headers) }
        if let blob {
            try store.touch(blob.sha256)
            node.metrics.fetchEnded(.hit)  // a download answered from the cache, without a fetch
            return Response(status: status, headers: headers, body: HubStream.fileBody(blob.path, range, connection: connection))
        }
        if let notStored { return try notStored() }
        let flight = await start(want, learned: learned)
        let stream = HubStream(store: store, active: node.engine.active, digest: want.sha256, url: want.url, flight: flight,
                               connection: connection)
        return Response(status: status, headers: headers, body: stream.body(range))
    }
}

/// A client's request to the Hub endpoint or the registry mirror: its credentials, whether it is a peer's
/// local-only question (answered from what this node holds, public things only), and the connection a file's bytes
/// go out on.
struct ClientCall: Sendable {
    var request: Request
    var auth: String?
    var localOnly: Bool
    var connection: ServingConnection
    var isHead: Bool { request.method == .head }

    init(_ request: Request, connection: ServingConnection = .unknown) {
        self.request = request
        self.connection = connection
        self.auth = request.headers[.authorization]
        self.localOnly = HTTPField.Name(HubService.localOnlyHeader).map { request.headers[$0] == "1" } ?? false
    }
}
