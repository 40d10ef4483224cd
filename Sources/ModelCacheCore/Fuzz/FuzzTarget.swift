import Foundation

/// The parsers a peer, an origin or a browser can reach, each fed arbitrary bytes. Used by the libFuzzer
/// executable (`Sources/ModelCacheFuzz`, built only by `scripts/fuzz`) and by the test that replays every crash the
/// fuzzer ever found (`Tests/Fuzz/crashes/<target>/`): a parser must return (a value or nil), never trap.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case range            // Range request header (GET/HEAD of a blob: peer API, browser API, Hub endpoint)
    case contentRange     // Content-Range of an origin's or a peer's 206
    case peerTXT          // mDNS TXT strings (NUL-separated here)
    case catalogue        // a peer's catalogue (JSON, or gzip when the bytes start with the gzip magic)
    case manifest         // a peer's manifest (JSON)
    case availability     // a peer's availability answer (JSON + chunk bitmaps)
    case hubRoute         // a request path on the Hub endpoint
    case hubJSON          // Hub JSON and Link headers (HubXet)
    case hubCache         // hf download/import: a tree listing (API or trees/*.json), a snapshot link, a file pattern
    case originHeaders    // an origin's response headers ("Name: value" lines): Repr-Digest, ETag, sizes
    case chunkJournal     // a partial download's journal (a file)
    case procNetTCP       // /proc/net/tcp text
    case clusterHeaders   // a request's cluster signature headers ("Name: value" lines; the first line is the target)
    case config           // config.toml (FormCheck, then TOMLKit/toml++, then the settings' checks)
    case registry         // the registry mirror: a /v2/ path (first line), then WWW-Authenticate, manifests, tokens (the rest)

    /// Feeds `data` to the parser and touches what it returns (so that lazily computed fields are computed too).
    /// Returns the invariants the answer broke (empty when none): the fuzz executable aborts on one, so libFuzzer
    /// keeps the input; this library itself never traps on it.
    public func run(_ data: [UInt8]) -> [String] {
        var broken: [String] = []
        let text = String(decoding: data, as: UTF8.self)
        switch self {
        case .range:
            for size: Int64 in [0, 1, 4096, 1 << 30, Int64.max] {
                if case .range(let r) = ByteRangeRequest.parse(text, size: size) {
                    _ = ContentRange(first: r.lowerBound, last: r.upperBound - 1, total: size).header
                    _ = r.count
                }
            }
        case .clusterHeaders:
            // The key, time and nonce of protocol/vectors/cluster-key-v1.json, so the corpus can hold a valid request.
            guard let key = ClusterKey(bytes: Array(0..<32)) else { break }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let target = lines.first.map(String.init) ?? "/"
            let headers = Self.headerLines(lines.dropFirst().joined(separator: "\n"))
            func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
            var verifier = ClusterRequestVerifier(key: key, maxNonces: 2)
            let now: Int64 = 1_767_225_600
            let first = verifier.check(method: "GET", target: target, time: header(ClusterKey.timeHeader),
                                       nonce: header(ClusterKey.nonceHeader), signature: header(ClusterKey.signatureHeader), now: now)
            if first == nil, verifier.check(method: "GET", target: target, time: header(ClusterKey.timeHeader),
                                            nonce: header(ClusterKey.nonceHeader), signature: header(ClusterKey.signatureHeader),
                                            now: now) == nil {
                broken.append("a signed request was accepted twice")
            }
        case .contentRange:
            if let cr = ContentRange(parsing: text) { _ = cr.header; _ = cr.last - cr.first }
        case .peerTXT:
            _ = PeerTXT.parse(data.split(separator: 0, omittingEmptySubsequences: false).map(Array.init))?.encode()
        case .catalogue:
            let body = data.starts(with: [0x1f, 0x8b]) ? (Gzip.decompress(data, limit: 1 << 20) ?? []) : data
            if let c = try? JSONDecoder().decode(Catalogue.self, from: Data(body)) {
                _ = Catalogue.version(of: c.blobs)
                for e in c.blobs { _ = try? ChunkLayout(size: e.size, chunkSize: e.chunkSize).count }
            }
        case .manifest:
            if let m = try? JSONDecoder().decode(Manifest.self, from: Data(data)) {
                let layout = m.layout
                if layout.count > 0 { _ = layout.range(of: layout.count - 1) }
                _ = layout.chunks(covering: 0..<layout.size)
            }
        case .availability:
            if let a = PeerAvailability.decode(data), let layout = try? ChunkLayout(size: a.size, chunkSize: a.chunkSize),
               layout.count <= 1 << 20 {
                _ = a.chunkSets(for: layout).map { $0.have.indices.count + $0.claims.count }
            }
        case .hubRoute:
            if case .resolve(let repo, let revision, let path)? = HubRoute.parse(path: text) {
                _ = repo.resolveURL(upstream: "https://huggingface.co", revision: revision, path: path)
            }
        case .hubCache:
            for f in (HubTreeFile.parse(apiListing: data) ?? []) + (HubTreeFile.parse(treeCache: data) ?? []) {
                if !HubCacheLayout.isSafePath(f.path) || f.size < 0 { broken.append("an unsafe listing entry was kept: \(f.path)") }
                _ = HubCacheLayout.symlinkTarget(path: f.path, etag: f.etag)
            }
            let layout = HubCacheLayout(root: "/h")
            let repo = HubRepo(kind: .model, id: "a/b")
            if let name = layout.blobName(symlinkTarget: text, path: "d/f", repo: repo), !HubCacheLayout.isBlobName(name) {
                broken.append("a link target gave a blob name that is not one: \(name)")
            }
            _ = HubCacheLayout.repo(folderName: text)
            let lines = text.split(separator: "\n", maxSplits: 1).map(String.init)
            if lines.count == 2 { _ = HubGlob.matches(String(lines[1].prefix(4096)), String(lines[0].prefix(256))) }
        case .hubJSON:
            _ = HubXet.strip(json: data)
            _ = HubXet.linkEntries(text)
            _ = HubXet.nextLink(text)
        case .originHeaders:
            let headers = FuzzTarget.headerLines(text)
            for status in [200, 206, 302] {
                let info = OriginInfo.from(hops: [OriginInfo.Hop(url: "http://o/f", status: status, headers: headers)])
                _ = info.size.map { try? ChunkLayout(size: $0).count }
            }
            for (_, v) in headers {
                _ = OriginInfo.parseReprDigest(v)
                _ = OriginInfo.normalizeETag(v)
                _ = HTTPURLCheck.problem(v)
            }
            _ = HubXet.strip(headers: headers)
            for status in [200, 302] {
                if let meta = HubFileMeta.from(headers: headers, status: status, repo: HubRepo(kind: .model, id: "a/b"), path: "f", isPublic: true),
                   let size = meta.size {
                    _ = ByteRangeRequest.parse("bytes=0-", size: size)
                    if size < 0 { broken.append("HubFileMeta gave a negative size \(size)") }
                }
            }
        case .chunkJournal:
            _ = ChunkJournal.parse(text, chunkCount: 1 << 20)
        case .procNetTCP:
            if let l = ProcNetTCP.Endpoint(ip: "127.0.0.1", port: 7070), let r = ProcNetTCP.Endpoint(ip: "127.0.0.1", port: 40000) {
                _ = ProcNetTCP.owner(local: l, remote: r, in: text)
                _ = ProcNetTCP.owner(local: r, remote: l, in: text)
            }
        case .config:
            do {
                let file = try ConfigFile(path: "fuzz.toml", bytes: data)
                for (key, entry) in file.entries {
                    _ = entry.value.toml
                    if SettingSpec.named(key) == nil { broken.append("ConfigFile kept an unknown key \(key)") }
                    if entry.line < 1 { broken.append("ConfigFile gave line \(entry.line) for \(key)") }
                }
            } catch {
                if error.message.contains("\n") { broken.append("a config error of more than one line: \(error.message)") }
                if !error.message.hasPrefix("fuzz.toml") { broken.append("a config error that does not name the file: \(error.message)") }
            }
        case .registry:
            broken += FuzzTarget.registry(text, data)
        }
        return broken
    }

    static func registry(_ text: String, _ data: [UInt8]) -> [String] {
        var broken: [String] = []
        let firstLine = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let path = firstLine.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        let mirrors = RegistryMirrors([RegistryMirror(name: "docker.io", base: "https://registry-1.docker.io"),
                                       RegistryMirror(name: "registry.ollama.ai", base: "https://registry.ollama.ai")])
        switch RegistryRoute.parse(path: path) {
        case .manifest(let name, _)?, .blob(let name, _)?:
            if name.contains("..") || name.contains("//") || name.hasPrefix("/") { broken.append("a route kept the name \(name)") }
            if case .mirror(_, let repo) = mirrors.select(name: name, ns: RegistryRoute.namespace(query: firstLine)),
               repo.isEmpty || repo.hasPrefix("/") { broken.append("a selection gave the repository '\(repo)'") }
        default: break
        }
        for c in AuthChallenge.parse(text) {
            if let url = c.tokenURL(scope: "repository:a/b:pull"), HTTPURLCheck.problem(url) != nil {
                broken.append("a token URL that is not one: \(url)")
            }
        }
        if let t = RegistryToken.parse(data), t.token.contains(where: { $0 == "\r" || $0 == "\n" || $0 == " " }) {
            broken.append("a token that cannot go in a header")
        }
        if let m = OCIManifest.parse(data), (m.blobs + m.manifests).contains(where: { $0.size < 0 }) {
            broken.append("a descriptor with a negative size")
        }
        _ = try? RegistryMirror(parsing: firstLine)
        return broken
    }

    /// `Name: value` lines (CR LF or LF); a line without a colon is skipped.
    static func headerLines(_ text: String) -> [(String, String)] {
        text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " }))
        }
    }
}
