import Foundation

/// The Hugging Face Hub paths a node answers (protocol/PROTOCOL.md §13), parsed from a request path.
///
/// Repo ids are `name` or `owner/name`; datasets and spaces are prefixed (`/datasets/…`, `/api/datasets/…`).
/// Revisions arrive percent-encoded (`refs%2Fpr%2F1`) and are decoded here; `path` is the file's path in the repo.
public enum HubRoute: Sendable, Equatable {
    /// `HEAD|GET /[datasets/|spaces/]{repo}/resolve/{revision}/{path}`
    case resolve(HubRepo, revision: String, path: String)
    /// `GET /api/{kind}/{repo}/revision/{revision}`
    case revision(HubRepo, revision: String)
    /// `GET /api/{kind}/{repo}/tree/{revision}[/{path}]`
    case tree(HubRepo, revision: String, path: String)
    /// Any other `/api/…` request (proxied while the upstream is reachable).
    case otherAPI

    /// nil when the path is not a Hub path (the node's own routes then answer it).
    public static func parse(path rawPath: String) -> HubRoute? {
        let segments = rawPath.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard let first = segments.first, !first.isEmpty else { return nil }
        if first == "api" { return parseAPI(Array(segments.dropFirst())) ?? .otherAPI }
        var rest = segments[...]
        var kind = HubRepo.Kind.model
        if first == "datasets" { kind = .dataset; rest = rest.dropFirst() }
        else if first == "spaces" { kind = .space; rest = rest.dropFirst() }
        let r = Array(rest)
        // {name}/resolve/… or {owner}/{name}/resolve/…
        for idLength in [2, 1] where r.count >= idLength + 3 && r[idLength] == "resolve" {
            guard let repo = HubRepo(kind: kind, segments: r[0..<idLength]),
                  let rev = decode(r[idLength + 1]), !rev.isEmpty else { return nil }
            let file = r[(idLength + 2)...].compactMap(decode)
            guard file.count == r.count - idLength - 2, HubRoute.isSafe(path: file) else { return nil }
            return .resolve(repo, revision: rev, path: file.joined(separator: "/"))
        }
        return nil
    }

    static func parseAPI(_ s: [String]) -> HubRoute? {
        guard let kindSegment = s.first, let kind = HubRepo.Kind(apiSegment: kindSegment) else { return nil }
        let r = Array(s.dropFirst())
        for idLength in [2, 1] where r.count >= idLength + 2 {
            let verb = r[idLength]
            guard verb == "revision" || verb == "tree", let repo = HubRepo(kind: kind, segments: r[0..<idLength]),
                  let rev = decode(r[idLength + 1]), !rev.isEmpty else { continue }
            if verb == "revision" {
                guard r.count == idLength + 2 else { return nil }
                return .revision(repo, revision: rev)
            }
            let sub = r[(idLength + 2)...].compactMap(decode)
            guard sub.count == r.count - idLength - 2, HubRoute.isSafe(path: sub) else { return nil }
            return .tree(repo, revision: rev, path: sub.joined(separator: "/"))
        }
        return nil
    }

    static func decode(_ s: String) -> String? { s.removingPercentEncoding }

    /// No empty, `.` or `..` segments: a repo path names a file, never a way out of the repo.
    static func isSafe(path: [String]) -> Bool {
        path.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\0") }
    }

    /// A 40-hex git commit id: such a revision never moves, so what is known of it needs no upstream check.
    public static func isCommit(_ revision: String) -> Bool {
        revision.utf8.count == 40 && revision.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// A repository on the Hub: its kind and id (`owner/name` or `name`).
public struct HubRepo: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case model = "models", dataset = "datasets", space = "spaces"

        init?(apiSegment: String) { self.init(rawValue: apiSegment) }

        /// The prefix of resolve URLs: none for models.
        public var resolvePrefix: String {
            switch self {
            case .model: ""
            case .dataset: "datasets/"
            case .space: "spaces/"
            }
        }
    }

    public var kind: Kind
    public var id: String

    public init(kind: Kind, id: String) {
        self.kind = kind
        self.id = id
    }

    init?(kind: Kind, segments: ArraySlice<String>) {
        let parts = segments.compactMap { $0.removingPercentEncoding }
        guard parts.count == segments.count,
              parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("/") && $0 != "resolve" }) else { return nil }
        self.init(kind: kind, id: parts.joined(separator: "/"))
    }

    /// `https://hub/[datasets/]{repo}/resolve/{commit}/{path}`: the URL a Hub file is cached under (one per
    /// commit, so peers' catalogues name the same URL for the same file).
    public func resolveURL(upstream: String, revision: String, path: String) -> String {
        upstream + "/" + kind.resolvePrefix + id + "/resolve/" + HubRepo.encodeSegment(revision) + "/"
            + path.split(separator: "/").map { HubRepo.encodeSegment(String($0)) }.joined(separator: "/")
    }

    /// The path of this repo's revision API: `/api/{kind}/{repo}/revision/{revision}`.
    public func revisionPath(_ revision: String) -> String {
        "/api/" + kind.rawValue + "/" + id + "/revision/" + HubRepo.encodeSegment(revision)
    }

    public func treePath(_ revision: String, path: String) -> String {
        "/api/" + kind.rawValue + "/" + id + "/tree/" + HubRepo.encodeSegment(revision)
            + (path.isEmpty ? "" : "/" + path.split(separator: "/").map { HubRepo.encodeSegment(String($0)) }.joined(separator: "/"))
    }

    public func resolvePath(_ revision: String, path: String) -> String {
        String(resolveURL(upstream: "", revision: revision, path: path))
    }

    static let segmentAllowed: CharacterSet = {
        var s = CharacterSet.alphanumerics
        s.insert(charactersIn: "-._~")
        return s
    }()

    /// Percent-encodes one path segment the way the client's `quote(…, safe="")` does.
    public static func encodeSegment(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: segmentAllowed) ?? s
    }
}
