import Foundation

/// The registry paths a node answers (protocol §16), parsed from a request path: the read side of the OCI
/// distribution API under `/v2/`. Names and references are checked (`RegistryName`); anything else under `/v2/`
/// (uploads, tag lists, the catalogue) is `.unsupported`.
public enum RegistryRoute: Sendable, Equatable {
    /// `GET /v2/`
    case ping
    /// `GET|HEAD /v2/{name}/manifests/{tag|digest}`
    case manifest(name: String, reference: RegistryReference)
    /// `GET|HEAD /v2/{name}/blobs/{digest}`
    case blob(name: String, digest: BlobDigest)
    /// A `/v2/` path with a bad name (`NAME_INVALID`), reference (`MANIFEST_INVALID`) or digest (`DIGEST_INVALID`).
    case invalid(code: String, message: String)
    /// Another `/v2/` path: not served by a mirror.
    case unsupported

    /// nil when the path is not under `/v2` (the node's other routes answer it).
    public static func parse(path: String) -> RegistryRoute? {
        guard path == "/v2" || path.hasPrefix("/v2/") else { return nil }
        let rest = path.dropFirst(4)
        if rest.isEmpty { return .ping }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return .unsupported }
        let verb = parts[parts.count - 2], last = parts[parts.count - 1]
        guard verb == "manifests" || verb == "blobs" else { return .unsupported }
        let name = parts[0..<(parts.count - 2)].joined(separator: "/")
        guard RegistryName.isValid(name: name) else {
            return .invalid(code: "NAME_INVALID", message: "invalid repository name")
        }
        if verb == "blobs" {
            guard let d = RegistryName.digest(last) else {
                return .invalid(code: "DIGEST_INVALID", message: "a blob is named by sha256:<64 lowercase hex digits>")
            }
            return .blob(name: name, digest: d)
        }
        guard let reference = RegistryReference(parsing: last) else {
            return .invalid(code: "MANIFEST_INVALID", message: "invalid tag or digest")
        }
        return .manifest(name: name, reference: reference)
    }

    /// The value of containerd's `ns` query parameter (the registry a mirror request is for, percent-encoded:
    /// `ns=localhost%3A5000`), if any.
    public static func namespace(query: String?) -> String? {
        guard let query else { return nil }
        for item in query.split(separator: "&") where item.hasPrefix("ns=") {
            return String(item.dropFirst(3)).removingPercentEncoding ?? String(item.dropFirst(3))
        }
        return nil
    }
}

/// One upstream registry behind the node: `serve --registry-mirror NAME=URL`.
public struct RegistryMirror: Sendable, Equatable {
    /// The registry's name as clients know it (`docker.io`, `registry.ollama.ai`, `ghcr.io`, `localhost:5000`).
    public var name: String
    /// Where the node asks it (`https://registry-1.docker.io`), without a trailing slash.
    public var base: String

    public init(name: String, base: String) {
        self.name = name
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        self.base = b
    }

    /// `NAME=URL`. NAME: a host name in lower case, optionally `:PORT`; URL: http(s), no query.
    public init(parsing s: String, option: String = "--registry-mirror") throws(ModelCacheError) {
        guard let eq = s.firstIndex(of: "=") else {
            throw .invalidArgument("\(option) '\(s)' must be NAME=URL, e.g. registry.ollama.ai=https://registry.ollama.ai")
        }
        let name = String(s[..<eq]), url = String(s[s.index(after: eq)...])
        guard RegistryMirror.isValid(name: name) else {
            throw .invalidArgument("\(option) '\(s)': '\(name)' is not a registry host name (lower case letters, digits, '.', '-', optional :PORT)")
        }
        if let problem = HTTPURLCheck.problem(url) {
            throw .invalidArgument("\(option) '\(s)': '\(url)' is not an http(s) URL (\(problem))")
        }
        guard !url.contains("?"), !url.contains("#") else {
            throw .invalidArgument("\(option) '\(s)': the URL must have no query or fragment")
        }
        self.init(name: name, base: url)
    }

    /// `[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?`
    public static func isValid(name: String) -> Bool {
        let parts = name.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty, host.utf8.count <= 253 else { return false }
        if parts.count == 2 {
            guard let p = Int(parts[1]), (1...65535).contains(p), parts[1].utf8.count <= 5 else { return false }
        }
        let ok = host.utf8.allSatisfy { RegistryName.isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
        return ok && RegistryName.isAlnum(host.utf8.first ?? 0) && RegistryName.isAlnum(host.utf8.last ?? 0)
    }
}

/// The node's upstream registries and how a request picks one (protocol §16): containerd's `?ns=NAME`, else a first
/// path component equal to a NAME (`/v2/registry.ollama.ai/library/llama3/manifests/8b`), else the first mirror.
public struct RegistryMirrors: Sendable, Equatable {
    public var mirrors: [RegistryMirror]

    public init(_ mirrors: [RegistryMirror]) { self.mirrors = mirrors }

    public init(parsing list: [String], option: String = "--registry-mirror") throws(ModelCacheError) {
        var out: [RegistryMirror] = []
        for s in list {
            let m = try RegistryMirror(parsing: s, option: option)
            guard !out.contains(where: { $0.name == m.name }) else {
                throw .invalidArgument("\(option) names \(m.name) twice: give each registry once")
            }
            out.append(m)
        }
        mirrors = out
    }

    public enum Selection: Sendable, Equatable {
        /// The mirror, and the repository's name at it.
        case mirror(RegistryMirror, repository: String)
        /// `?ns=` names a registry this node does not mirror.
        case unknownNamespace(String)
        /// No mirror configured.
        case none
    }

    public func select(name: String, ns: String?) -> Selection {
        if let ns {
            guard let m = mirrors.first(where: { $0.name == ns }) else { return .unknownNamespace(ns) }
            return .mirror(m, repository: name)
        }
        if let slash = name.firstIndex(of: "/") {
            let first = String(name[..<slash])
            if let m = mirrors.first(where: { $0.name == first }) {
                return .mirror(m, repository: String(name[name.index(after: slash)...]))
            }
        }
        guard let m = mirrors.first else { return .none }
        return .mirror(m, repository: name)
    }
}
