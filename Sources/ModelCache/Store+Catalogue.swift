import Foundation
import GRDB
import ModelCacheCore

extension Store {
    /// Every stored public blob as a catalogue entry. Only URLs with first-hand evidence are listed (protocol §8:
    /// the origin's digest or bytes, or an import), so a mapping this node took from a peer or a `--sha256` never
    /// spreads; the ETag and Last-Modified are given only when every listed URL had the same. Private blobs (gated
    /// or private Hub repos) are never advertised.
    public func catalogueEntries() throws -> [Catalogue.Entry] {
        let firstHand = URLEvidence.allCases.filter(\.isFirstHand).map(\.rawValue)
        let marks = firstHand.map { _ in "?" }.joined(separator: ", ")
        return try db.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT sha256, size, chunkSize FROM blob WHERE NOT private ORDER BY sha256")
            return try rows.compactMap { row -> Catalogue.Entry? in
                guard let d = BlobDigest(ifValid: row["sha256"] as String) else { return nil }
                let urls = try Row.fetchAll(db, sql: """
                    SELECT url, etag, lastModified FROM url WHERE sha256 = ? AND evidence IN (\(marks)) ORDER BY url
                    """, arguments: StatementArguments([d.hex] + firstHand))
                let etags = Set(urls.map { $0["etag"] as String? })
                let dates = Set(urls.map { $0["lastModified"] as String? })
                return Catalogue.Entry(sha256: d, size: row["size"], chunkSize: row["chunkSize"], urls: urls.map { $0["url"] },
                                       etag: etags.count == 1 ? etags.first ?? nil : nil,
                                       lastModified: dates.count == 1 ? dates.first ?? nil : nil)
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
