import Hummingbird
import ModelCacheCore

/// Sends Hub paths (`/{repo}/resolve/…`, `/api/…`) to the node's Hugging Face endpoint; everything else goes on to
/// the node's own routes. Added before any route, so it sees every request.
struct HubMiddleware<Context: RequestContext>: RouterMiddleware {
    let hub: HubService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head, let route = HubRoute.parse(path: request.uri.path) else {
            return try await next(request, context)
        }
        return try await hub.respond(route, request, connection: context.servingConnection)
    }
}
