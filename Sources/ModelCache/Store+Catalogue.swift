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
        // Two statements whatever the number of blobs (one per blob cost a statement compilation each: bench/scale.sh).
        return try db.read { db in
            var urls: [String: [(url: String, etag: String?, lastModified: String?)]] = [:]
            let urlRows = try Row.fetchCursor(db, sql: """
                SELECT sha256, url, etag, lastModified FROM url WHERE evidence IN (\(marks)) ORDER BY sha256, url
                """, arguments: StatementArguments(firstHand))
            while let u = try urlRows.next() {
                urls[u["sha256"] as String, default: []].append((u["url"], u["etag"], u["lastModified"]))
            }
            var out: [Catalogue.Entry] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT sha256, size, chunkSize FROM blob WHERE NOT private ORDER BY sha256")
            while let row = try rows.next() {
                let hex: String = row["sha256"]
                guard let d = BlobDigest(ifValid: hex) else { continue }
                let mine = urls[hex] ?? []
                let etags = Set(mine.map(\.etag))
                let dates = Set(mine.map(\.lastModified))
                out.append(Catalogue.Entry(sha256: d, size: row["size"], chunkSize: row["chunkSize"], urls: mine.map(\.url),
                                           etag: etags.count == 1 ? etags.first ?? nil : nil,
                                           lastModified: dates.count == 1 ? dates.first ?? nil : nil))
            }
            return out
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
