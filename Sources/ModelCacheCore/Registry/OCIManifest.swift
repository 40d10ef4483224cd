import Foundation

/// What a node reads of a manifest (protocol §16): its media type and the blobs it names (config and layers of an
/// image manifest, the child manifests of an index), each with its digest and size. Docker's schema 2 manifests and
/// lists, OCI manifests and indexes, and Ollama's model manifests (Docker schema 2 with `application/vnd.ollama.…`
/// layer types) all have this shape. Descriptors with another algorithm than sha256, or a negative size, are left out.
public struct OCIManifest: Sendable, Equatable {
    public struct Descriptor: Sendable, Equatable {
        public var mediaType: String?
        public var digest: BlobDigest
        public var size: Int64
    }

    public var mediaType: String?
    /// The config and layers (an image manifest): blobs.
    public var blobs: [Descriptor]
    /// The manifests of an index (a multi-platform image): fetched as manifests, by digest.
    public var manifests: [Descriptor]

    /// The media types a node asks an upstream for when the client sent no `Accept` (all it can relay).
    public static let knownTypes = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]

    /// The largest manifest a node takes (the reference registry's limit is 4 MiB).
    public static let maxSize = 4 << 20

    private struct Raw: Decodable {
        struct D: Decodable { var mediaType: String?; var digest: String?; var size: Int64? }
        var mediaType: String?
        var config: D?
        var layers: [D]?
        var manifests: [D]?
    }

    /// nil when `body` is not a JSON object with a manifest's fields (or is too large).
    public static func parse(_ body: [UInt8]) -> OCIManifest? {
        guard body.count <= maxSize, let raw = try? JSONDecoder().decode(Raw.self, from: Data(body)) else { return nil }
        guard raw.config != nil || raw.layers != nil || raw.manifests != nil else { return nil }
        func descriptors(_ l: [Raw.D]) -> [Descriptor] {
            l.compactMap { d in
                guard let s = d.digest, let digest = RegistryName.digest(s), let size = d.size, size >= 0 else { return nil }
                return Descriptor(mediaType: d.mediaType, digest: digest, size: size)
            }
        }
        return OCIManifest(mediaType: raw.mediaType, blobs: descriptors((raw.config.map { [$0] } ?? []) + (raw.layers ?? [])),
                           manifests: descriptors(raw.manifests ?? []))
    }
}

/// A token endpoint's answer (the distribution token spec): `{"token": "…", "expires_in": 300}` (or `access_token`).
public struct RegistryToken: Sendable, Equatable {
    public var token: String
    /// Seconds; 60 when the answer does not say (the spec's default), clamped to 1 hour.
    public var expiresIn: Int

    private struct Raw: Decodable { var token: String?; var access_token: String?; var expires_in: Int? }

    /// nil when there is no token, or it holds a byte that may not go in a header (a token is visible ASCII).
    public static func parse(_ body: [UInt8]) -> RegistryToken? {
        guard body.count <= 1 << 20, let raw = try? JSONDecoder().decode(Raw.self, from: Data(body)),
              let t = raw.token ?? raw.access_token, !t.isEmpty, t.utf8.count <= 16384,
              t.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else { return nil }
        return RegistryToken(token: t, expiresIn: min(max(raw.expires_in ?? 60, 1), 3600))
    }
}
