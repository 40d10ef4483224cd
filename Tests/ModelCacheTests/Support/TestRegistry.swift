import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ModelCacheCore
import NIOCore
import Synchronization

/// An in-process upstream registry on 127.0.0.1, port 0, that wants bearer tokens as Docker Hub does: every `/v2/`
/// request without a valid token gets `401` with `WWW-Authenticate: Bearer realm=…/token,service=…,scope=…`; the
/// token endpoint gives anonymous tokens for public repositories' pull scope. A private repository accepts only
/// `Authorization: Bearer <secret>` (what its owner's client sends). Counts requests per path.
final class TestRegistry: Sendable {
    struct State {
        var blobs: [BlobDigest: [UInt8]] = [:]
        /// (repo, reference) → (media type, body)
        var manifests: [String: (String, [UInt8])] = [:]
        var privateRepos: [String: String] = [:]
        var requests: [String] = []
        var tokenRequests = 0
        var down = false
        /// Blobs served with one byte flipped (a corrupt upstream or CDN).
        var corrupt: Set<BlobDigest> = []
        /// The tokens' `expires_in`.
        var tokenLifetime = 300
    }

    private let state = Mutex(State())
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)
    let port: Int
    var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(port: Int) { self.port = port }

    static func start() async throws -> TestRegistry {
        let (stream, cont) = AsyncStream<Int>.makeStream()
        let box = Mutex<TestRegistry?>(nil)
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { req, _ in
            guard let r = box.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            return r.respond(req)
        }
        router.get("**", use: handler)
        router.head("**", use: handler)
        var logger = Logger(label: "test-registry")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { cont.yield($0.localAddress?.port ?? 0); cont.finish() }, logger: logger)
        let task = Task { try await app.run() }
        var port = 0
        for await p in stream { port = p }
        let r = TestRegistry(port: port)
        box.withLock { $0 = r }
        r.task.withLock { $0 = task }
        return r
    }

    func stop() async {
        let t = task.withLock { $0 }
        t?.cancel()
        _ = await t?.result
    }

    /// Answers 503 to everything while set (an upstream that is down, with the node's requests still counted).
    func setDown(_ down: Bool) { state.withLock { $0.down = down } }

    func makePrivate(_ repo: String, secret: String) { state.withLock { $0.privateRepos[repo] = secret } }

    func setTokenLifetime(_ seconds: Int) { state.withLock { $0.tokenLifetime = seconds } }

    /// Serves this blob with its middle byte flipped.
    func corrupt(_ d: BlobDigest) { state.withLock { _ = $0.corrupt.insert(d) } }

    /// Stores an image: its blobs, and a Docker schema 2 manifest naming them under `tag`. Returns the manifest.
    @discardableResult
    func push(_ repo: String, tag: String, config: [UInt8], layers: [[UInt8]],
              layerType: String = "application/vnd.docker.image.rootfs.diff.tar.gzip") -> (digest: BlobDigest, body: [UInt8]) {
        func descriptor(_ type: String, _ b: [UInt8]) -> [String: Any] {
            ["mediaType": type, "digest": "sha256:" + BlobDigest.of(b).hex, "size": b.count]
        }
        let type = "application/vnd.docker.distribution.manifest.v2+json"
        let obj: [String: Any] = ["schemaVersion": 2, "mediaType": type,
                                  "config": descriptor("application/vnd.docker.container.image.v1+json", config),
                                  "layers": layers.map { descriptor(layerType, $0) }]
        let body = Array((try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data())
        let digest = BlobDigest.of(body)
        state.withLock { s in
            for b in [config] + layers { s.blobs[BlobDigest.of(b)] = b }
            s.manifests[repo + ":" + tag] = (type, body)
            s.manifests[repo + ":sha256:" + digest.hex] = (type, body)
        }
        return (digest, body)
    }

    /// Requests that reached a path with this prefix (GET and HEAD; token requests excluded).
    func requests(under prefix: String) -> Int { state.withLock { $0.requests.filter { $0.hasPrefix(prefix) }.count } }
    var tokenRequests: Int { state.withLock { $0.tokenRequests } }

    func respond(_ req: Request) -> Response {
        let path = req.uri.path
        let isHead = req.method == .head
        let snapshot = state.withLock { s -> State in
            if path == "/token" { s.tokenRequests += 1 } else { s.requests.append((isHead ? "HEAD " : "") + path) }
            return s
        }
        if snapshot.down { return Response(status: .serviceUnavailable) }
        if path == "/token" {
            let scope = (req.uri.queryParameters.get("scope") ?? "")
            let body = Array("{\"token\":\"anon.\(scope.replacingOccurrences(of: ":", with: "."))\",\"expires_in\":\(snapshot.tokenLifetime)}".utf8)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        guard let route = RegistryRoute.parse(path: path) else { return Response(status: .notFound) }
        let repo: String
        switch route {
        case .manifest(let name, _), .blob(let name, _): repo = name
        default: repo = "-"
        }
        let auth = req.headers[.authorization]
        let granted: Bool
        if let secret = snapshot.privateRepos[repo] {
            granted = auth == "Bearer " + secret
        } else {
            granted = auth == "Bearer anon.repository.\(repo).pull"
        }
        guard granted else {
            var h = HTTPFields()
            h[HTTPField.Name("WWW-Authenticate")!] = "Bearer realm=\"\(baseURL)/token\",service=\"test-registry\",scope=\"repository:\(repo):pull\""
            return Response(status: .unauthorized, headers: h)
        }
        switch route {
        case .manifest(let name, let reference):
            guard let (type, body) = snapshot.manifests[name + ":" + reference.description] else { return Response(status: .notFound) }
            var h = HTTPFields()
            h[.contentType] = type
            h[HTTPField.Name("Docker-Content-Digest")!] = "sha256:" + BlobDigest.of(body).hex
            h[.contentLength] = String(body.count)
            return isHead ? Response(status: .ok, headers: h) : Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        case .blob(_, let d):
            guard var bytes = snapshot.blobs[d] else { return Response(status: .notFound) }
            if snapshot.corrupt.contains(d) { bytes[bytes.count / 2] ^= 0xff }
            var h = HTTPFields()
            h[.acceptRanges] = "bytes"
            h[HTTPField.Name("Docker-Content-Digest")!] = "sha256:" + d.hex
            var range = 0..<Int64(bytes.count)
            var status = HTTPResponse.Status.ok
            if case .range(let r) = ByteRangeRequest.parse(req.headers[.range], size: Int64(bytes.count)) {
                range = r
                status = .partialContent
                h[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound - 1)/\(bytes.count)"
            }
            h[.contentLength] = String(range.count)
            if isHead { return Response(status: status, headers: h) }
            return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: bytes[Int(range.lowerBound)..<Int(range.upperBound)])))
        default:
            return Response(status: .ok)
        }
    }
}
