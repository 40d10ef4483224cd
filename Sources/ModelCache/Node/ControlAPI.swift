import Foundation
import HTTPTypes
import Hummingbird
import ModelCacheCore
import NIOCore

/// The local control API, on a Unix socket readable only by the node's user (never reachable from peers).
/// protocol/PROTOCOL.md §9.
struct ControlAPI: Sendable {
    let node: Node

    struct FetchBody: Codable {
        var url: String
        var sha256: String?
        var connections: Int?
        var useOrigin: Bool?
        var chunkSize: Int64?
    }

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.post("/v1/local/fetch") { req, ctx in try await self.fetch(req, ctx) }
        router.get("/v1/local/peers") { _, _ in try PeerAPI.json(await self.node.directory.status()) }
        router.get("/v1/local/info") { _, _ in
            try PeerAPI.json(["id": self.node.nodeID, "name": self.node.settings.name,
                              "port": String(await self.node.listeningPort()), "cacheDir": self.node.store.root])
        }
    }

    func fetch(_ req: Request, _ ctx: some RequestContext) async throws -> Response {
        let body = try await req.body.collect(upTo: 1 << 20)
        guard let f = try? JSONDecoder().decode(FetchBody.self, from: Data(buffer: body)) else {
            return try PeerAPI.errorResponse(.badRequest, "bad-request", "body must be JSON {\"url\": ...}")
        }
        do {
            let expected = try f.sha256.map { s throws(ModelCacheError) in try BlobDigest(validating: s) }
            let request = FetchRequest(url: f.url, expected: expected, connections: f.connections ?? 4,
                                       chunkSize: f.chunkSize ?? ChunkLayout.defaultChunkSize, useOrigin: f.useOrigin ?? true)
            return try PeerAPI.json(try await node.fetch(request))
        } catch let e as ModelCacheError {
            return try PeerAPI.errorResponse(ControlAPI.status(for: e), e.code, e.description)
        }
    }

    static func status(for e: ModelCacheError) -> HTTPResponse.Status {
        switch e {
        case .malformedURL, .malformedDigest: .badRequest
        case .notInCache: .notFound
        case .originStatus, .originUnreachable, .noSource, .peerRejected: .badGateway
        case .diskFull, .quotaExceeded: .init(code: 507, reasonPhrase: "Insufficient Storage")
        default: .unprocessableContent
        }
    }
}
