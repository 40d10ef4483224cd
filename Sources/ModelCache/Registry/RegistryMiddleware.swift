import HTTPTypes
import Hummingbird
import ModelCacheCore

/// Sends `/v2/…` requests to the node's registry mirror (protocol §16); everything else goes on to the node's other
/// routes. Added before any route, beside the Hub endpoint's middleware.
struct RegistryMiddleware<Context: RequestContext>: RouterMiddleware {
    let registry: RegistryService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let route = RegistryRoute.parse(path: request.uri.path) else { return try await next(request, context) }
        guard request.method == .get || request.method == .head else {
            return try RegistryService.error(.methodNotAllowed, "UNSUPPORTED", "a mirror is read-only: push to the registry itself", head: false)
        }
        return try await registry.respond(route, request, connection: context.servingConnection)
    }
}

/// Header names of the distribution API and of the mirror (constant, valid field names).
enum RegistryHeader {
    static let contentDigest = name("Docker-Content-Digest")
    static let apiVersion = name("Docker-Distribution-API-Version")
    static let staleTag = name(RegistryService.staleTagHeader)

    private static func name(_ s: String) -> HTTPField.Name {
        guard let n = HTTPField.Name(s) else { return .via }  // unreachable: every name above is a valid token
        return n
    }
}
