import Foundation
import ArgumentParser
import ModelCache
import ModelCacheCore

/// The flags of `serve` (also taken by `config`, to show what `serve` would use). Each is Optional with no default,
/// so "not given" is visible: then the MODELCACHE_* variable, config.toml or the default applies (SettingSpec).
struct ServeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Peer API address, HOST:PORT (default 0.0.0.0:\(SettingSpec.defaultPort)).", valueName: "host:port"))
    var listen: String?

    @Option(name: .customLong("peer"), help: ArgumentHelp("A static peer, HOST:PORT (repeatable).", valueName: "host:port"))
    var peers: [String] = []

    @Flag(inversion: .prefixedNo, help: "Publish and browse over mDNS (default); --no-mdns: static peers only.")
    var mdns: Bool?

    @Option(help: "mDNS instance name (default: the host name).")
    var name: String?

    @Option(name: [.customLong("max-upload-connections"), .customLong("max-uploads")],
            help: ArgumentHelp("Concurrent uploads to peers (more get 503 and retry; default 16).", valueName: "n"))
    var maxUploads: String?

    @Option(help: ArgumentHelp("Bytes per second from origins, across all jobs (suffixes K, M, G: 25M = 25 MiB/s = ~210 Mbit/s).", valueName: "rate"))
    var maxOriginRate: String?

    @Option(help: ArgumentHelp("Bytes per second uploaded to peers, all together (suffixes K, M, G).", valueName: "rate"))
    var maxUploadRate: String?

    @Option(help: ArgumentHelp("The Hugging Face Hub behind the node's Hub endpoint (clients set HF_ENDPOINT=http://<node>); 'none' turns the endpoint off.", valueName: "url"))
    var hfUpstream: String?

    @Option(help: ArgumentHelp("A Hugging Face Hub cache to import (hard-linked, like modelcache hf import) at start and whenever it changes.", valueName: "path"))
    var hfImport: String?
    @Option(name: .customLong("registry-mirror"),
            help: ArgumentHelp("An upstream registry of the node's /v2/ registry mirror, NAME=URL, e.g. registry.ollama.ai=https://registry.ollama.ai (repeatable; the first is the default).", valueName: "name=url"))
    var registryMirrors: [String] = []

    @Option(help: ArgumentHelp("Cache size limit in bytes (suffixes K, M, G, T): least-recently-used unpinned blobs are evicted.", valueName: "size"))
    var maxSize: String?

    @Option(help: ArgumentHelp("Seconds a connection may stay without a request (also the time to send a request's headers; default 30).", valueName: "s"))
    var idleTimeout: String?

    @Option(help: ArgumentHelp("Connections accepted at once on the peer port (lowered to what the open-file limit allows; default 512).", valueName: "n"))
    var maxConnections: String?

    @Option(name: .customLong("allow-origin"),
            help: ArgumentHelp("A web origin whose pages may use the browser API, e.g. http://localhost:8000 (repeatable; none by default).", valueName: "origin"))
    var allowOrigins: [String] = []

    @Option(help: ArgumentHelp("The site's caching proxy for origin requests, http://HOST:PORT, or 'none' (default: http_proxy, https_proxy and no_proxy from the environment). LAN peers are never asked through it.", valueName: "url|none"))
    var originProxy: String?

    @Option(help: ArgumentHelp("A file holding the cluster's shared key (16-4096 bytes, mode 600): answer only peers with the same key, use only them.", valueName: "path"))
    var clusterKeyFile: String?

    @Option(help: ArgumentHelp("Permission bits of the control socket, in octal: 0600 lets only this user run commands through the node; 0660 also its group (the systemd unit's; default 0600).", valueName: "mode"))
    var controlSocketMode: String?

    @Option(help: ArgumentHelp("Log lines on stderr: text (default), logfmt (key=value, one line per event) or json (one object per line).", valueName: "format"))
    var logFormat: String?

    /// The node's settings, one line per setting of SettingSpec.all (flag > MODELCACHE_* > config file > default).
    /// A new setting: its entry in SettingSpec, its flag above (if any), and one line here.
    /// `loadKey` false (`modelcache config`): the cluster key file is named, not read (a desktop user may not read
    /// the service's key).
    func settings(_ r: inout ConfigResolver, loadKey: Bool = true) throws -> (node: NodeSettings, engine: FetchEngine.Settings) {
        var node = NodeSettings()
        var engine = FetchEngine.Settings()
        if let v = try r.text(.listen, flag: listen) { (node.listenHost, node.listenPort) = try Self.address(v) }
        if let v = try r.list(.peers, flag: peers) { node.staticPeers = try v.map { p throws(ModelCacheError) in try PeerAddress(parsing: p) } }
        if let v = try r.bool(.mdns, flag: mdns) { node.mdns = v }
        if let v = try r.text(.name, flag: name) { node.name = v }
        if let v = try r.int(.maxUploads, flag: maxUploads) { node.maxUploads = v }
        engine.maxOriginRate = try r.bytes(.maxOriginRate, flag: maxOriginRate)
        node.maxUploadRate = try r.bytes(.maxUploadRate, flag: maxUploadRate)
        if let v = try r.text(.hfUpstream, flag: hfUpstream) { node.hfUpstream = v == "none" ? nil : v }
        node.hfImport = try r.text(.hfImport, flag: hfImport)
        if let v = try r.list(.registryMirrors, flag: registryMirrors) { node.registryMirrors = try RegistryMirrors(parsing: v) }
        engine.maxCacheSize = try r.bytes(.maxSize, flag: maxSize)
        if let v = try r.int(.idleTimeout, flag: idleTimeout) { node.idleTimeout = .seconds(v) }
        if let v = try r.int(.maxConnections, flag: maxConnections) { node.maxConnections = v }
        if let v = try r.list(.allowOrigins, flag: allowOrigins) { node.allowedOrigins = v }
        engine.originProxy = try ProxyRule.resolve(option: r.text(.originProxy, flag: originProxy),
                                                   environment: ProcessInfo.processInfo.environment)
        if let v = try r.text(.clusterKeyFile, flag: clusterKeyFile), loadKey { node.clusterKey = try ClusterKeyFile.load(v) }
        if let v = try r.text(.controlSocketMode, flag: controlSocketMode) {
            node.controlSocketMode = try FileModeOption.socketMode(v, option: "control-socket-mode")
        }
        return (node, engine)
    }

    /// The log format (`--log-format`, checked by the table's choice), set apart: logging starts before the node.
    func logFormat(_ r: inout ConfigResolver) throws -> LogFormat {
        try r.text(.logFormat, flag: logFormat).flatMap(LogFormat.init(rawValue:)) ?? .text
    }

    static func address(_ s: String) throws -> (String, Int) {
        let a = try PeerAddress(parsing: s, allowAnyPort: true, role: "--listen address")
        return (a.host, a.port)
    }
}
