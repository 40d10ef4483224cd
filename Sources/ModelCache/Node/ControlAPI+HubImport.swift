import Foundation
import Hummingbird
import ModelCacheCore
import NIOCore

/// `modelcache hf import` through the node that holds the cache (protocol §15): one blob or one repo's metadata a call.
extension ControlAPI {
    func addHubImportRoute<Context: RequestContext>(to router: Router<Context>) {
        router.post("/v1/local/hf-import") { req, _ in
            guard let r = try? JSONDecoder().decode(HubImportRequest.self, from: Data(buffer: try await req.body.collect(upTo: 64 << 20))) else {
                return try PeerAPI.errorResponse(.badRequest, "bad-request", "body must be JSON {\"blob\":{…}} or {\"metadata\":{…}}")
            }
            let store = self.node.store
            return try await ControlAPI.answer { try store.importHub(r) }.announcing(to: self.node)
        }
    }
}
