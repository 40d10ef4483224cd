import Foundation
import ModelCacheCore

/// How a node runs. Documented defaults; every field has a `serve` flag.
public struct NodeSettings: Sendable {
    /// The default peer port (registered nowhere; chosen to be memorable and unprivileged).
    public static let defaultPort = 7070

    public var listenHost = "0.0.0.0"
    public var listenPort = NodeSettings.defaultPort
    /// The mDNS instance name (default: the host name).
    public var name = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "modelcache"
    public var staticPeers: [PeerAddress] = []
    public var mdns = true
    /// Concurrent uploads to peers; more get 503 + Retry-After (`--max-upload-connections`).
    public var maxUploads = 16
    /// Bytes per second of uploads to peers, all together (`--max-upload-rate`); nil = unlimited.
    public var maxUploadRate: Int64?
    /// How often static peers' catalogues are re-read (mDNS peers are re-read when their TXT changes, and as often).
    public var pollInterval: Duration = .seconds(5)
    /// The Hugging Face Hub (or mirror) behind the node's Hub endpoint (`serve --hf-upstream`); nil = no endpoint.
    public var hfUpstream: String? = NodeSettings.defaultHFUpstream
    public static let defaultHFUpstream = "https://huggingface.co"
    /// A Hugging Face Hub cache imported at start and when it changes (`serve --hf-import`, protocol §15).
    public var hfImport: String?
    /// The upstream registries of the node's registry mirror (`serve --registry-mirror NAME=URL`, protocol §16);
    /// empty = no `/v2/` endpoint.
    public var registryMirrors = RegistryMirrors([])
    /// How long a tag's digest is used without asking the upstream registry again.
    public var registryTagTTL: Duration = .seconds(30)
    /// The local control socket (default: `<cache-dir>/node.sock`).
    public var controlSocket: String?
    /// The control socket's permission bits (`serve --control-socket-mode`): 0600 lets only the node's user in;
    /// 0660 also lets its group (the systemd unit's `modelcache` group) run `modelcache fetch` through the node.
    public var controlSocketMode: UInt16 = 0o600
    /// Web origins whose pages may use the browser API (`--allow-origin`, protocol §12), e.g. `http://localhost:8000`.
    public var allowedOrigins: [String] = []
    /// A connection to a listener (peer port, control socket) with no request for this long is closed; the same
    /// time bounds how long a client may take to send a request's headers.
    public var idleTimeout: Duration = .seconds(30)
    /// Concurrent connections accepted on the peer port (more wait in the kernel's backlog); lowered to what
    /// RLIMIT_NOFILE allows (ConnectionBudget).
    public var maxConnections = 512
    /// The cluster's shared key (`serve --cluster-key-file`, protocol §14): the node answers only peers that prove
    /// it, signs its own requests, and uses only peers announcing the same fingerprint. nil: no cluster (open LAN).
    public var clusterKey: ClusterKey?

    public init() {}

    /// True for a listen host that means every address of the machine (`0.0.0.0`, `::`).
    public static func isWildcard(_ host: String) -> Bool { ["0.0.0.0", "::", "[::]", ""].contains(host) }
}
