/// One setting of `modelcache serve` (or the cache folder): its key in config.toml, its flag, its environment
/// variable, what it holds, its default and its help. `SettingSpec.all` is the table every source is checked
/// against, `modelcache config` prints and `config --example` writes out.
///
/// Precedence: a flag > its `MODELCACHE_*` variable > config.toml > the default. The file is `--config PATH` or
/// `$MODELCACHE_CONFIG` (must exist), else `$XDG_CONFIG_HOME/modelcache/config.toml` (`~/.config/…`), else
/// `/etc/modelcache/config.toml` (either may be absent). See ConfigFile and ConfigResolver.
public struct SettingSpec: Sendable, Equatable {
    /// The key in config.toml (top level).
    public let key: String
    /// The command-line flag (`--listen`), or nil for a setting set only in the file or the environment.
    public let flag: String?
    /// The environment variable, `MODELCACHE_…`.
    public let env: String
    public let kind: SettingKind
    /// The default; nil when there is none (no limit) or it is computed at run time (`defaultNote` says which).
    public let defaultValue: SettingValue?
    /// What the default means when `defaultValue` is nil ("no limit", "the host name").
    public let defaultNote: String
    /// A TOML literal for the example file when there is no default (`"200G"`).
    public let example: String
    /// One line of help (the example file's comment).
    public let help: String

    public init(key: String, flag: String?, env: String, kind: SettingKind, defaultValue: SettingValue?,
                defaultNote: String = "", example: String? = nil, help: String) {
        self.key = key
        self.flag = flag
        self.env = env
        self.kind = kind
        self.defaultValue = defaultValue
        self.defaultNote = defaultNote
        self.example = example ?? defaultValue?.toml ?? "\"\""
        self.help = help
    }

    /// How a value from this source is named in errors.
    func name(in source: SettingSource) -> String {
        switch source {
        case .flag(let f): f
        case .environment(let e): e
        case .file(let path, let line): "\(path):\(line): \(key)"
        case .defaultValue: key
        }
    }
}

// To add a setting: (1) one entry below (key, flag, MODELCACHE_ variable, kind, default, help) and in `all`;
// (2) if it has a flag, an @Option/@Flag in ServeOptions (Sources/modelcache), declared Optional with no default so
// "not given" is visible; (3) one line in ServeOptions.settings(_:) mapping it onto NodeSettings/FetchEngine.Settings
// (`if let v = try r.int(.mySetting, flag: mySetting) { node.mySetting = v }`). The example file (packaging/config.toml,
// `modelcache config --example`), `modelcache config`, the checks and the error messages follow from the entry;
// regenerate packaging/config.toml (ConfigCLITests says so when it differs).
extension SettingSpec {
    public static let defaultPort = 7070

    public static let cacheDir = SettingSpec(
        key: "cache-dir", flag: "--cache-dir", env: "MODELCACHE_DIR", kind: .path, defaultValue: nil,
        defaultNote: "$XDG_CACHE_HOME/modelcache, else ~/.cache/modelcache", example: "\"/var/cache/modelcache\"",
        help: "The cache folder (every command uses it).")
    public static let listen = SettingSpec(
        key: "listen", flag: "--listen", env: "MODELCACHE_LISTEN", kind: .address(allowAnyPort: true),
        defaultValue: .text("0.0.0.0:\(defaultPort)"),
        help: "Peer API and status page address, HOST:PORT (port 0: any free port).")
    public static let peers = SettingSpec(
        key: "peers", flag: "--peer", env: "MODELCACHE_PEERS", kind: .addresses, defaultValue: .list([]),
        example: "[\"192.168.1.20:7070\"]",
        help: "Static peers, HOST:PORT (the environment variable: separated by commas).")
    public static let mdns = SettingSpec(
        key: "mdns", flag: "--mdns", env: "MODELCACHE_MDNS", kind: .bool, defaultValue: .bool(true),
        help: "Publish and browse over mDNS (false: static peers only; flag --no-mdns).")
    public static let name = SettingSpec(
        key: "name", flag: "--name", env: "MODELCACHE_NAME", kind: .text, defaultValue: nil,
        defaultNote: "the host name", example: "\"classroom-1\"",
        help: "The mDNS instance name.")
    public static let maxUploads = SettingSpec(
        key: "max-upload-connections", flag: "--max-upload-connections", env: "MODELCACHE_MAX_UPLOAD_CONNECTIONS",
        kind: .count(1...4096), defaultValue: .int(16),
        help: "Concurrent uploads to peers (more get 503 and retry).")
    public static let maxOriginRate = SettingSpec(
        key: "max-origin-rate", flag: "--max-origin-rate", env: "MODELCACHE_MAX_ORIGIN_RATE", kind: .size,
        defaultValue: nil, defaultNote: "no limit", example: "\"25M\"",
        help: "Bytes per second from origins, across all jobs (K, M, G: \"25M\" = 25 MiB/s).")
    public static let maxUploadRate = SettingSpec(
        key: "max-upload-rate", flag: "--max-upload-rate", env: "MODELCACHE_MAX_UPLOAD_RATE", kind: .size,
        defaultValue: nil, defaultNote: "no limit", example: "\"50M\"",
        help: "Bytes per second uploaded to peers, all together (K, M, G).")
    public static let hfUpstream = SettingSpec(
        key: "hf-upstream", flag: "--hf-upstream", env: "MODELCACHE_HF_UPSTREAM", kind: .urlOrNone,
        defaultValue: .text("https://huggingface.co"),
        help: "The Hugging Face Hub behind the node's Hub endpoint; \"none\" turns the endpoint off.")
    public static let hfImport = SettingSpec(
        key: "hf-import", flag: "--hf-import", env: "MODELCACHE_HF_IMPORT", kind: .path,
        defaultValue: nil, defaultNote: "none", example: "\"/home/alice/.cache/huggingface/hub\"",
        help: "A Hugging Face Hub cache to import (hard-linked, like modelcache hf import) at start and when it changes.")
    public static let registryMirrors = SettingSpec(
        key: "registry-mirrors", flag: "--registry-mirror", env: "MODELCACHE_REGISTRY_MIRRORS", kind: .registryMirrors,
        defaultValue: .list([]), example: "[\"registry.ollama.ai=https://registry.ollama.ai\", \"docker.io=https://registry-1.docker.io\"]",
        help: "Upstream registries of the node's /v2/ registry mirror, NAME=URL (the first is the default; none: no mirror).")
    public static let maxSize = SettingSpec(
        key: "max-size", flag: "--max-size", env: "MODELCACHE_MAX_SIZE", kind: .size,
        defaultValue: nil, defaultNote: "no limit", example: "\"200G\"",
        help: "Cache size limit (K, M, G, T): least-recently-used unpinned blobs are evicted.")
    public static let idleTimeout = SettingSpec(
        key: "idle-timeout", flag: "--idle-timeout", env: "MODELCACHE_IDLE_TIMEOUT", kind: .count(1...86_400),
        defaultValue: .int(30),
        help: "Seconds a connection may stay without a request (also the time to send a request's headers).")
    public static let maxConnections = SettingSpec(
        key: "max-connections", flag: "--max-connections", env: "MODELCACHE_MAX_CONNECTIONS",
        kind: .count(1...1_000_000), defaultValue: .int(512),
        help: "Connections accepted at once on the peer port (lowered to what the open-file limit allows).")
    public static let allowOrigins = SettingSpec(
        key: "allow-origins", flag: "--allow-origin", env: "MODELCACHE_ALLOW_ORIGINS", kind: .origins,
        defaultValue: .list([]), example: "[\"http://localhost:8000\"]",
        help: "Web origins whose pages may use the browser API (none by default).")
    public static let originProxy = SettingSpec(
        key: "origin-proxy", flag: "--origin-proxy", env: "MODELCACHE_ORIGIN_PROXY", kind: .proxyOrNone,
        defaultValue: nil, defaultNote: "http_proxy, https_proxy and no_proxy from the environment",
        example: "\"http://squid.example:3128\"",
        help: "The site's caching proxy for origin requests (http://HOST:PORT), or \"none\"; LAN peers never go through it.")
    public static let clusterKeyFile = SettingSpec(
        key: "cluster-key-file", flag: "--cluster-key-file", env: "MODELCACHE_CLUSTER_KEY_FILE", kind: .path,
        defaultValue: nil, defaultNote: "none: no cluster key", example: "\"/etc/modelcache/cluster.key\"",
        help: "The cluster's shared key (16-4096 bytes, mode 600): answer only peers with the same key, use only them.")
    public static let controlSocketMode = SettingSpec(
        key: "control-socket-mode", flag: "--control-socket-mode", env: "MODELCACHE_CONTROL_SOCKET_MODE",
        kind: .socketMode, defaultValue: .text("0600"),
        help: "The control socket's permission bits, octal in quotes: \"0600\" this user only, \"0660\" also its group.")
    public static let logFormat = SettingSpec(
        key: "log-format", flag: "--log-format", env: "MODELCACHE_LOG_FORMAT",
        kind: .choice(LogFormat.allCases.map(\.rawValue)), defaultValue: .text(LogFormat.text.rawValue),
        help: "Log lines on stderr: text, logfmt (key=value, one line per event) or json (one object per line).")

    /// Every setting, in the order `modelcache config` and the example file show them.
    public static let all: [SettingSpec] = [
        cacheDir, listen, peers, mdns, name, maxUploads, maxOriginRate, maxUploadRate, hfUpstream, hfImport,
        registryMirrors, maxSize,
        idleTimeout, maxConnections, allowOrigins, originProxy, clusterKeyFile,
        controlSocketMode, logFormat,
    ]

    public static func named(_ key: String) -> SettingSpec? { all.first { $0.key == key } }
}
