import HTTPTypes
import Hummingbird
import NIOCore

/// The files of the status page and `modelcache.js`, compiled into the binary (SwiftPM `embedInCode`), so an
/// installed `modelcache` needs nothing next to it. The sources are under `Sources/ModelCache/Web/`.
enum WebAssets {
    struct Asset: Sendable {
        var path: String
        var contentType: String
        var bytes: [UInt8]
    }

    static let all: [Asset] = [
        Asset(path: "/modelcache.js", contentType: "text/javascript; charset=utf-8", bytes: PackageResources.modelcache_js),
        Asset(path: "/ui/status.js", contentType: "text/javascript; charset=utf-8", bytes: PackageResources.status_js),
        Asset(path: "/ui/status.css", contentType: "text/css; charset=utf-8", bytes: PackageResources.status_css),
    ]

    static func response(_ a: Asset) -> Response {
        var h = HTTPFields()
        h[.contentType] = a.contentType
        h[.cacheControl] = "no-cache"
        h[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: a.bytes)))
    }
}
