import Crypto
import Foundation

/// One file of a commit, as the Hub's `/api/{kind}/{repo}/tree/{commit}?recursive=true` lists it and as the client
/// keeps it in `trees/<commit>.json` (`huggingface_hub/_tree_cache.py`, format_version 1).
public struct HubTreeFile: Sendable, Hashable, Codable {
    public var path: String
    public var size: Int64
    /// The git blob id: of the file for a plain file, of its LFS pointer for an LFS file.
    public var blobID: String
    /// The sha256 of an LFS file (its blob name in the Hub cache); nil for a plain file (named by `blobID`).
    public var lfsSHA256: String?

    public init(path: String, size: Int64, blobID: String, lfsSHA256: String?) {
        self.path = path
        self.size = size
        self.blobID = blobID
        self.lfsSHA256 = lfsSHA256
    }

    /// The name of its blob in the Hub cache = the ETag the Hub sends for it.
    public var etag: String { lfsSHA256 ?? blobID }

    /// The files of an API tree listing (a JSON array; folders and malformed entries skipped, unsafe paths too).
    public static func parse(apiListing body: [UInt8]) -> [HubTreeFile]? {
        guard let items = try? JSONSerialization.jsonObject(with: Data(body)) as? [Any] else { return nil }
        return items.compactMap { item -> HubTreeFile? in
            guard let e = item as? [String: Any], e["type"] as? String == "file", let path = e["path"] as? String,
                  HubCacheLayout.isSafePath(path), let oid = (e["oid"] as? String)?.lowercased(), HubCacheLayout.isBlobName(oid),
                  let size = (e["size"] as? NSNumber)?.int64Value, size >= 0 else { return nil }
            var sha: String? = nil
            if let lfs = e["lfs"] as? [String: Any] {
                guard let o = (lfs["oid"] as? String)?.lowercased(), BlobDigest(ifValid: o) != nil else { return nil }
                sha = o
            }
            return HubTreeFile(path: path, size: size, blobID: oid, lfsSHA256: sha)
        }
    }

    /// The API listing the node keeps and answers with (`type`, `oid`, `size`, `path`, `lfs`).
    public static func apiListing(_ files: [HubTreeFile]) -> [UInt8] {
        let items: [[String: Any]] = files.sorted { $0.path < $1.path }.map { f in
            var e: [String: Any] = ["type": "file", "oid": f.blobID, "size": f.size, "path": f.path]
            if let sha = f.lfsSHA256 {
                e["lfs"] = ["oid": sha, "size": f.size, "pointerSize": HubTreeFile.lfsPointer(sha256: sha, size: f.size).count]
            }
            return e
        }
        return Array((try? JSONSerialization.data(withJSONObject: items, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("[]".utf8))
    }

    /// `trees/<commit>.json` as the client writes it.
    public static func treeCacheJSON(_ files: [HubTreeFile]) -> [UInt8] {
        var entries: [String: Any] = [:]
        for f in files {
            var e: [String: Any] = ["size": f.size, "blob_id": f.blobID]
            if let sha = f.lfsSHA256 { e["lfs_sha256"] = sha; e["lfs_size"] = f.size }
            entries[f.path] = e
        }
        let obj: [String: Any] = ["format_version": 1, "files": entries]
        return Array((try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data())
    }

    /// The files of a `trees/<commit>.json` (nil: not that format); unsafe paths and bad names skipped.
    public static func parse(treeCache body: [UInt8]) -> [HubTreeFile]? {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              (obj["format_version"] as? NSNumber)?.intValue == 1, let files = obj["files"] as? [String: Any] else { return nil }
        return files.compactMap { path, value -> HubTreeFile? in
            guard let e = value as? [String: Any], HubCacheLayout.isSafePath(path),
                  let oid = (e["blob_id"] as? String)?.lowercased(), HubCacheLayout.isBlobName(oid),
                  let size = (e["size"] as? NSNumber)?.int64Value, size >= 0 else { return nil }
            let sha = (e["lfs_sha256"] as? String)?.lowercased()
            if let sha, BlobDigest(ifValid: sha) == nil { return nil }
            return HubTreeFile(path: path, size: size, blobID: oid, lfsSHA256: sha)
        }.sorted { $0.path < $1.path }
    }

    /// The git LFS pointer file of an LFS object (what git stores in place of its bytes).
    public static func lfsPointer(sha256: String, size: Int64) -> [UInt8] {
        Array("version https://git-lfs.github.com/spec/v1\noid sha256:\(sha256)\nsize \(size)\n".utf8)
    }

    /// The git blob id of some bytes: sha1 of `blob <size>\0` + bytes.
    public static func gitBlobID(_ bytes: [UInt8]) -> String {
        var h = Insecure.SHA1()
        h.update(data: Array("blob \(bytes.count)\u{0}".utf8))
        h.update(data: bytes)
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
