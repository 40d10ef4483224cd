/// Every failure a user can meet, each with a one-line message that says what failed and what to do.
/// `code` is the stable machine-readable name used on the wire (protocol/PROTOCOL.md, "Errors") and in `--json`.
public enum ModelCacheError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformedURL(String)
    case malformedDigest(String)
    case invalidManifest(String)
    case protocolViolation(String)
    case originStatus(url: String, status: Int, reason: String)
    case originUnreachable(url: String, detail: String)
    /// A LAN peer gave no answer (refused, timed out, gone): other sources go on.
    case peerUnreachable(peer: String, detail: String)
    /// A body that broke off after the server (an origin or a peer) answered: the connection dropped, fewer bytes
    /// came than announced, or (`stalled`) no byte came within the read timeout.
    case bodyCut(url: String, detail: String, stalled: Bool)
    case originChanged(url: String, detail: String)
    case digestMismatch(expected: BlobDigest, got: BlobDigest)
    case sizeMismatch(expected: Int64, got: Int64)
    case diskFull(path: String, needed: Int64)
    case io(path: String, detail: String)
    case notInCache(String)
    case noSource(String)
    case peerRejected(peer: String, detail: String)
    case aborted
    case quotaExceeded(needed: Int64, limit: Int64)
    /// A command-line value out of range or not a number (`--max-size 99999999999T`, a port above 65535).
    case invalidArgument(String)
    /// The listen address is held by another process (a node still running, or one that just quit).
    case portInUse(String)

    public var code: String {
        switch self {
        case .malformedURL: "malformed-url"
        case .malformedDigest: "malformed-digest"
        case .invalidManifest: "invalid-manifest"
        case .protocolViolation: "protocol-violation"
        case .originStatus: "bad-status"
        case .originUnreachable, .peerUnreachable, .bodyCut: "fetch-error"
        case .originChanged: "origin-changed"
        case .digestMismatch: "digest-mismatch"
        case .sizeMismatch: "size-mismatch"
        case .diskFull: "disk-full"
        case .io: "io-error"
        case .notInCache: "not-found"
        case .noSource: "no-source"
        case .peerRejected: "peer-rejected"
        case .aborted: "aborted"
        case .quotaExceeded: "quota-exceeded"
        case .invalidArgument: "invalid-argument"
        case .portInUse: "port-in-use"
        }
    }

    /// Process exit status for the CLI (documented in README.md).
    public var exitCode: Int32 {
        switch self {
        case .malformedURL, .malformedDigest, .invalidArgument: 64
        case .portInUse: 69
        case .originStatus: 3
        case .originUnreachable, .peerUnreachable, .bodyCut, .noSource, .peerRejected: 4
        case .digestMismatch, .sizeMismatch, .originChanged, .invalidManifest, .protocolViolation: 5
        case .diskFull, .quotaExceeded: 6
        case .notInCache: 2
        case .io: 74
        case .aborted: 130
        }
    }

    public var description: String {
        switch self {
        case .malformedURL(let u):
            "malformed URL '\(u)': give an absolute http:// or https:// URL"
        case .malformedDigest(let d):
            "malformed sha256 '\(d)': give 64 hexadecimal digits"
        case .invalidManifest(let d):
            "invalid manifest: \(d)"
        case .protocolViolation(let d):
            "protocol violation: \(d)"
        case .originStatus(let url, let status, let reason):
            "origin answered \(status) \(reason) for \(url): \(Self.advice(status))"
        case .originUnreachable(let url, let detail):
            "cannot reach the origin for \(url) (\(detail)): check the network, the host name and any proxy, then retry; verified chunks are kept"
        case .peerUnreachable(let peer, let detail):
            "cannot reach peer \(peer) (\(detail)): it may have stopped or left the network; other sources are asked, verified chunks are kept"
        case .bodyCut(let url, let detail, _):
            "the download of \(url) broke off (\(detail)): check the network, then retry; verified chunks are kept"
        case .originChanged(let url, let detail):
            "the origin's file changed during the download of \(url) (\(detail)): retry to fetch the new version"
        case .digestMismatch(let e, let g):
            "sha256 mismatch: expected \(e.hex), got \(g.hex); nothing was stored: check the expected digest or the source"
        case .sizeMismatch(let e, let g):
            "size mismatch: expected \(e) bytes, got \(g); nothing was stored"
        case .diskFull(let path, let needed):
            "disk full at \(path): needed \(needed) bytes; free space, lower serve --max-size, or use --cache-dir on a larger disk"
        case .io(let path, let detail):
            "I/O error at \(path): \(detail)"
        case .notInCache(let what):
            "\(what) is not in the cache: see 'modelcache list'"
        case .noSource(let d):
            "no source can serve the blob: \(d)"
        case .peerRejected(let peer, let detail):
            "peer \(peer) rejected: \(detail)"
        case .aborted:
            "the download was aborted"
        case .quotaExceeded(let needed, let limit):
            "the blob needs \(needed) bytes but the cache limit is \(limit): raise --max-size or remove blobs"
        case .invalidArgument(let d):
            d
        case .portInUse(let address):
            "port \(address) is in use: stop the other node or pass --listen HOST:PORT"
        }
    }

    /// Whether another attempt may succeed (network trouble, a 5xx, 408 or 429) or the failure is final: a wrong
    /// argument, a full disk, or an origin or peer that broke the protocol (a lying Content-Length, a redirect
    /// loop, a redirect to an impossible port) fails at once instead of being retried forever.
    public var isRetryable: Bool { RetryPolicy.isRetryable(self) }

    static func advice(_ status: Int) -> String {
        switch status {
        case 401, 403: "the file needs access rights: check the URL and any token"
        case 404, 410: "check the URL; nothing was stored"
        case 416: "the origin refused the byte range; retry later"
        case 429: "the origin is rate-limiting; retry later"
        case 500...599: "the origin failed; retry later, verified chunks are kept"
        default: "check the URL"
        }
    }
}
