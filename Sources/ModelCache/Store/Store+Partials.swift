import Foundation
import ModelCacheCore

extension Store {
    /// The partial downloads under `partial/`: what each is, how much is verified, what it takes on disk, and
    /// whether a download holds it now (its URL's download lock is taken).
    public func partials() -> [CacheListing.Partial] { partialKeys().compactMap(partialInfo(key:)) }

    func partialKeys() -> [String] { PosixFile.list(partialDir).filter { !$0.hasSuffix(".lock") && !$0.hasPrefix(".") }.sorted() }

    func partialInfo(key: String) -> CacheListing.Partial? {
        let dir = partialDir + "/" + key
        guard PosixFile.list(dir).count > 0 || PosixFile.exists(dir) else { return nil }
        guard let bytes = PosixFile.readAll(dir + "/meta.json"),
              let meta = try? JSONDecoder().decode(PartialDownload.Meta.self, from: Data(bytes)) else {
            return CacheListing.Partial(url: "(unreadable: \(dir))", size: 0, verifiedBytes: 0, diskBytes: Store.diskUsage(dir),
                                        inUse: isDownloading(key: key))
        }
        var verified: Int64 = 0
        if let layout = try? ChunkLayout(size: meta.size, chunkSize: meta.chunkSize) {
            let text = String(decoding: PosixFile.readAll(dir + "/chunks.journal") ?? [], as: UTF8.self)
            verified = ChunkJournal.parse(text, chunkCount: layout.count).keys.reduce(0) { $0 + layout.length(of: $1) }
        }
        return CacheListing.Partial(url: meta.url, size: meta.size, verifiedBytes: verified, diskBytes: Store.diskUsage(dir),
                                    inUse: isDownloading(key: key))
    }

    /// Removes the partial downloads no download holds now (all but `keepURLs`); with `dryRun`, only says which.
    public func prunePartials(dryRun: Bool, keepURLs: Set<String> = []) throws -> [CacheListing.Partial] {
        var removed: [CacheListing.Partial] = []
        for key in partialKeys() {
            guard let info = partialInfo(key: key), !info.inUse, !keepURLs.contains(info.url) else { continue }
            if dryRun { removed.append(info); continue }
            // Hold the URL's download lock while removing, so no fetch starts on a half-removed folder.
            guard let lock = try FileLock.tryAcquire(partialDir + "/" + key + ".lock") else { continue }
            PosixFile.removeTree(partialDir + "/" + key)
            DownloadLock(lock).release()
            removed.append(info)
        }
        return removed
    }

    /// True when a process holds the download lock of `partial/<key>`.
    func isDownloading(key: String) -> Bool {
        let path = partialDir + "/" + key + ".lock"
        guard PosixFile.exists(path) else { return false }
        guard let lock = try? FileLock.tryAcquire(path) else { return true }
        DownloadLock(lock).release()
        return false
    }

    /// Bytes a folder's files take on disk (allocated blocks: a preallocated file counts whole).
    static func diskUsage(_ dir: String) -> Int64 {
        PosixFile.list(dir).reduce(Int64(0)) { sum, name in
            var st = stat()
            guard stat(dir + "/" + name, &st) == 0 else { return sum }
            return sum + Int64(st.st_blocks) * 512
        }
    }
}
