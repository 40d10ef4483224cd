import Synchronization

/// Credentials the node itself holds for some origins, asked for at every origin request (so a short-lived token is
/// renewed in the middle of a long download): a registry mirror's anonymous bearer tokens (protocol §16). A provider
/// answers for URLs under its base; a request that carries its own `Authorization` (a client's token) keeps it.
public final class OriginCredentials: Sendable {
    /// Given the requested URL, an `Authorization` value, or nil.
    public typealias Provider = @Sendable (String) async -> String?

    private let providers = Mutex<[(base: String, provider: Provider)]>([])

    public init() {}

    /// `base`: an origin and path prefix such as `https://registry-1.docker.io/v2/`.
    public func add(base: String, _ provider: @escaping Provider) {
        providers.withLock { $0.append((base, provider)) }
    }

    /// The `Authorization` for `url`, from the first provider whose base it starts with.
    public func authorization(for url: String) async -> String? {
        guard let p = providers.withLock({ list in list.first { url.hasPrefix($0.base) }?.provider }) else { return nil }
        return await p(url)
    }
}
