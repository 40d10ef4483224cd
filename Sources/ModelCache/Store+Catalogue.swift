import Foundation
import GRDB
import ModelCacheCore

extension Store {
    /// Every stored public blob as a catalogue entry (URLs, and the ETag seen for the first of them). Private blobs
    /// (gated or private Hub repos) are never advertised.
    public func catalogueEntries() throws -> [Catalogue.Entry] {
        try db.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT sha256, size, chunkSize FROM blob WHERE NOT private ORDER BY sha256")
            return try rows.compactMap { row -> Catalogue.Entry? in
                guard let d = BlobDigest(ifValid: row["sha256"] as String) else { return nil }
                let urls = try Row.fetchAll(db, sql: "SELECT url, etag FROM url WHERE sha256 = ? ORDER BY url", arguments: [d.hex])
                return Catalogue.Entry(sha256: d, size: row["size"], chunkSize: row["chunkSize"],
                                       urls: urls.map { $0["url"] }, etag: urls.first.flatMap { $0["etag"] })
            }
        }
    }

    /// This node's identity, created on first use and kept in `node-id`.
    public func nodeID() throws -> String {
        let path = root + "/node-id"
        if let bytes = PosixFile.readAll(path) {
            let s = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if PeerTXT.isValidNodeID(s) { return s }
        }
        let id = PeerTXT.randomNodeID()
        try PosixFile.writeAtomically(path, Array((id + "\n").utf8))
        return id
    }
}
