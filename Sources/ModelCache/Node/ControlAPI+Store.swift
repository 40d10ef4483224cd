import Foundation
import Hummingbird
import ModelCacheCore
import NIOCore

/// The commands that change the cache (`add`, `rm`, `verify`; `pin` is in `ControlAPI`), run by the node that holds
/// the cache's lock on behalf of the CLI. protocol/PROTOCOL.md §9.
extension ControlAPI {
    struct AddBody: Codable { var file: String; var url: String?; var sha256: String? }
    struct RemoveBody: Codable { var what: String }

    func addStoreRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.post("/v1/local/add") { req, _ in try await self.add(try await req.body.collect(upTo: 1 << 16)) }
        router.post("/v1/local/rm") { req, _ in try await self.remove(try await req.body.collect(upTo: 1 << 16)) }
        router.post("/v1/local/verify") { _, _ in try await self.verify() }
    }

    func add(_ body: ByteBuffer) async throws -> Response {
        guard let a = try? JSONDecoder().decode(AddBody.self, from: Data(buffer: body)), a.file.hasPrefix("/") else {
            return try PeerAPI.errorResponse(.badRequest, "bad-request", "body must be JSON {\"file\":\"/absolute/path\",\"url\":…,\"sha256\":…}")
        }
        let store = node.store
        return try await ControlAPI.answer {
            let expected = try a.sha256.map { s throws(ModelCacheError) in try BlobDigest(validating: s) }
            if let url = a.url { try FetchEngine.validate(url: url) }
            guard PosixFile.exists(a.file) else { throw ModelCacheError.io(path: a.file, detail: "no such file") }
            return try store.importFile(a.file, url: a.url, expected: expected)
        }.announcing(to: node)
    }

    func remove(_ body: ByteBuffer) async throws -> Response {
        guard let r = try? JSONDecoder().decode(RemoveBody.self, from: Data(buffer: body)) else {
            return try PeerAPI.errorResponse(.badRequest, "bad-request", "body must be JSON {\"what\":…}")
        }
        let store = node.store
        return try await ControlAPI.answer { try store.remove(r.what) }.announcing(to: node)
    }

    func verify() async throws -> Response {
        let store = node.store
        // A damaged blob found by verify is evicted: peers must stop asking for it.
        return try await ControlAPI.answer { try store.verifyAll() }.announcing(to: node)
    }

    /// Runs blocking store work (hashing whole files) on a thread of its own, not on Swift's cooperative pool nor on
    /// Dispatch's global queues (which that pool shares on Linux); a failure becomes a JSON error.
    static func answer<T: Encodable & Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> Response {
        let result = await OwnThread.result(work)
        switch result {
        case .success(let value):
            return try PeerAPI.json(value)
        case .failure(let e as ModelCacheError):
            let status: HTTPResponse.Status = e.code == "not-found" ? .notFound : e.code == "disk-full" ? .init(code: 507)
                : e.code == "malformed-url" || e.code == "malformed-digest" ? .badRequest : .unprocessableContent
            return try PeerAPI.errorResponse(status, e.code, e.description)
        case .failure(let e):
            return try PeerAPI.errorResponse(.internalServerError, "io-error", "\(e)")
        }
    }
}

extension Response {
    /// After a command that changed what the cache holds (`add`, `rm`, `verify`, `hf import`): re-publishes the TXT
    /// record with the new catalogue version at once, so mDNS peers re-read the catalogue now, not at their next poll.
    func announcing(to node: Node) -> Response {
        if status.kind == .successful { node.catalogueChanged() }
        return self
    }
}
