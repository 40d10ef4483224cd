import Foundation
import HTTPTypes
import Hummingbird
import ModelCacheCore
import NIOCore

/// The local control API, on a Unix socket readable only by the node's user (never reachable from peers).
/// protocol/PROTOCOL.md §9 and §10.
struct ControlAPI: Sendable {
    let node: Node

    struct CreateJob: Codable {
        struct Item: Codable { var url: String; var sha256: String?; var origin: Bool? }
        var id: String?
        var title: String?
        var requests: [Item]
        var downloadTotal: Int64?
        var connections: Int?
    }

    struct PinBody: Codable { var what: String; var pinned: Bool }

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.post("/v1/local/jobs") { req, _ in try await self.create(try await req.body.collect(upTo: 1 << 20)) }
        router.get("/v1/local/jobs") { _, _ in try PeerAPI.json(await self.node.jobs.list()) }
        router.post("/v1/local/jobs/clear") { _, _ in try PeerAPI.json(["cleared": try await self.node.jobs.clearFinished()]) }
        router.get("/v1/local/jobs/:id") { _, ctx in try await self.job(ctx.parameters.get("id") ?? "") }
        router.post("/v1/local/jobs/:id/abort") { _, ctx in try await self.abort(ctx.parameters.get("id") ?? "") }
        router.get("/v1/local/jobs/:id/events") { _, ctx in try await self.events(ctx.parameters.get("id")) }
        router.get("/v1/local/events") { _, _ in try await self.events(nil) }
        router.post("/v1/local/pin") { req, _ in try await self.pin(try await req.body.collect(upTo: 1 << 16)) }
        addStoreRoutes(to: router)
        addHubImportRoute(to: router)
        router.get("/v1/local/peers") { _, _ in try PeerAPI.json(await self.node.peerStatus()) }
        router.get("/v1/local/info") { _, _ in
            try PeerAPI.json(["id": self.node.nodeID, "name": self.node.settings.name,
                              "port": String(await self.node.listeningPort()), "cacheDir": self.node.store.root,
                              "hfUpstream": self.node.settings.hfUpstream ?? ""])
        }
    }

    func create(_ body: ByteBuffer) async throws -> Response {
        guard let c = try? JSONDecoder().decode(CreateJob.self, from: Data(buffer: body)) else {
            return try PeerAPI.errorResponse(.badRequest, "bad-request", "body must be JSON {\"requests\":[{\"url\":…}]}")
        }
        do {
            let requests = try c.requests.map { item throws(ModelCacheError) in
                Job.Request(url: item.url, sha256: try item.sha256.map { s throws(ModelCacheError) in try BlobDigest(validating: s) },
                            origin: item.origin)
            }
            let job = try await node.jobs.create(id: c.id, title: c.title ?? c.requests.first?.url ?? "", requests: requests,
                                                 downloadTotal: c.downloadTotal ?? 0, connections: c.connections)
            return try PeerAPI.json(job, status: .created)
        } catch let e as ModelCacheError {
            return try PeerAPI.errorResponse(.badRequest, e.code, e.description)
        } catch let e as JobManager.Failure {
            return try ControlAPI.response(for: e)
        }
    }

    func job(_ id: String) async throws -> Response {
        do { return try PeerAPI.json(try await node.jobs.get(id)) } catch let e as JobManager.Failure { return try ControlAPI.response(for: e) }
    }

    func abort(_ id: String) async throws -> Response {
        do { return try PeerAPI.json(try await node.jobs.abort(id)) } catch let e as JobManager.Failure { return try ControlAPI.response(for: e) }
    }

    func pin(_ body: ByteBuffer) async throws -> Response {
        guard let p = try? JSONDecoder().decode(PinBody.self, from: Data(buffer: body)) else {
            return try PeerAPI.errorResponse(.badRequest, "bad-request", "body must be JSON {\"what\":…,\"pinned\":true}")
        }
        do { return try PeerAPI.json(try node.store.setPinned(p.what, p.pinned)) } catch let e as ModelCacheError {
            return try PeerAPI.errorResponse(.notFound, e.code, e.description)
        }
    }

    /// Server-sent events: `progress`, `success`, `failure` (the job as JSON in `data:`). For one job the stream
    /// starts with its current state and ends after its final event; for all jobs it lasts until the client leaves.
    func events(_ id: String?) async throws -> Response {
        let jobs = node.jobs
        let stream = jobs.events.subscribe()
        var initial: [Job]
        if let id {
            do { initial = [try await jobs.get(id)] } catch let e as JobManager.Failure { return try ControlAPI.response(for: e) }
        } else {
            initial = await jobs.list()
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let first = initial
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            for j in first {
                try await writer.write(ControlAPI.sse(j))
                if id != nil && j.state.isFinal { try await writer.finish(nil); return }
            }
            for await j in stream where id == nil || j.id == id {
                try await writer.write(ControlAPI.sse(j))
                if id != nil && j.state.isFinal { break }
            }
            try await writer.finish(nil)
        })
    }

    static func sse(_ j: Job) -> ByteBuffer {
        let name = j.state == .success ? "success" : j.state == .failure ? "failure" : "progress"
        let data = (try? PeerAPI.encoder.encode(j)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ByteBuffer(string: "event: \(name)\ndata: \(data)\n\n")
    }

    static func response(for e: JobManager.Failure) throws -> Response {
        switch e {
        case .unknown: try PeerAPI.errorResponse(.notFound, "not-found", e.description)
        case .duplicate: try PeerAPI.errorResponse(.conflict, "conflict", e.description)
        case .invalidID, .noRequests: try PeerAPI.errorResponse(.badRequest, "bad-request", e.description)
        }
    }
}
