/// What one repo folder of a Hub cache holds, as read from disk (`HubCacheScanner`): the input of `HubImportPlan`.
public struct HubCacheScan: Sendable, Equatable {
    public var repo: HubRepo
    /// `refs/<name>` → commit (only 40-hex contents).
    public var refs: [String: String] = [:]
    /// commit → file path → blob name (what each snapshot symlink points to).
    public var snapshots: [String: [String: String]] = [:]
    /// commit → the listing of `trees/<commit>.json`, when the client wrote one.
    public var trees: [String: [HubTreeFile]] = [:]
    /// blob name → size, for the files present in `blobs/`.
    public var blobSizes: [String: Int64] = [:]
    /// What was odd on disk (a snapshot entry that is not a link into blobs/, a link to a missing blob).
    public var problems: [String] = []

    public init(repo: HubRepo) { self.repo = repo }
}

/// How to import one repo of a Hub cache into the store (`modelcache hf import`): each blob once, with every file
/// (commit, path) that names it and the Hub URLs a node caches those files under; the refs, and each commit's
/// listing, so a node answers `snapshot_download` of those commits offline.
public struct HubImportPlan: Sendable, Equatable {
    public struct Blob: Sendable, Equatable, Codable {
        /// The blob's name in the Hub cache: sha256 (LFS) or git blob sha1.
        public var name: String
        public var size: Int64
        public var isLFS: Bool { name.utf8.count == 64 }
        /// Every file that is this blob (sha256 filled in for LFS blobs; the store fills it for the others).
        public var files: [HubFileMeta]
        /// `{upstream}/[datasets/]{repo}/resolve/{commit|ref}/{path}` for each of those files.
        public var urls: [String]

        public init(name: String, size: Int64, files: [HubFileMeta], urls: [String]) {
            self.name = name
            self.size = size
            self.files = files
            self.urls = urls
        }
    }

    public var repo: HubRepo
    public var blobs: [Blob] = []
    /// revision → commit, for refs whose commit has a snapshot here, and each such commit → itself.
    public var refs: [String: String] = [:]
    /// commit → its listing (the client's `trees/<commit>.json`, else made from the snapshot's files).
    public var trees: [String: [HubTreeFile]] = [:]

    public init(scan: HubCacheScan, upstream: String, isPublic: Bool) {
        repo = scan.repo
        var byBlob: [String: Blob] = [:]
        for (commit, files) in scan.snapshots.sorted(by: { $0.key < $1.key }) {
            let refNames = scan.refs.filter { $0.value == commit }.map(\.key).sorted()
            var listing: [HubTreeFile] = []
            for (path, name) in files.sorted(by: { $0.key < $1.key }) {
                guard let size = scan.blobSizes[name] else { continue }
                let isLFS = name.utf8.count == 64
                let meta = HubFileMeta(repo: repo, commit: commit, path: path, size: size, etag: name,
                                       sha256: isLFS ? BlobDigest(ifValid: name) : nil, isPublic: isPublic)
                var b = byBlob[name] ?? Blob(name: name, size: size, files: [], urls: [])
                b.files.append(meta)
                for rev in [commit] + refNames { b.urls.append(repo.resolveURL(upstream: upstream, revision: rev, path: path)) }
                byBlob[name] = b
                let blobID = isLFS ? HubTreeFile.gitBlobID(HubTreeFile.lfsPointer(sha256: name, size: size)) : name
                listing.append(HubTreeFile(path: path, size: size, blobID: blobID, lfsSHA256: isLFS ? name : nil))
            }
            guard !listing.isEmpty else { continue }
            trees[commit] = scan.trees[commit] ?? listing
            refs[commit] = commit
            for r in refNames { refs[r] = commit }
        }
        blobs = byBlob.values.sorted { ($0.size, $0.name) < ($1.size, $1.name) }
    }

    public var fileCount: Int { blobs.reduce(0) { $0 + $1.files.count } }
    public var byteCount: Int64 { blobs.reduce(0) { $0 + $1.size } }
}
