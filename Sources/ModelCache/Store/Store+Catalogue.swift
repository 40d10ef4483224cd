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

    /// The catalogue's change counter: triggers bump it whenever a `blob` or `url` row the catalogue is made of
    /// changes, from any process (a `fetch --no-node` commits next to a running node). The same value means the same
    /// catalogue entries, so a node re-reads them only when it changed (`CatalogueCache`).
    public func catalogueGeneration() throws -> Int64 {
        try db.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM catalogue_generation WHERE id = 0") ?? 0 }
    }

    static func registerCatalogueGenerationMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v7-catalogue-generation") { db in
            let bump = "BEGIN UPDATE catalogue_generation SET value = value + 1 WHERE id = 0; END"
            // `blob` updates that leave these columns alone (lastUsedAt, pinned, the stat record) do not change it.
            try db.execute(sql: """
                CREATE TABLE catalogue_generation (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL);
                INSERT INTO catalogue_generation (id, value) VALUES (0, 0);
                CREATE TRIGGER catalogue_blob_insert AFTER INSERT ON blob \(bump);
                CREATE TRIGGER catalogue_blob_delete AFTER DELETE ON blob \(bump);
                CREATE TRIGGER catalogue_blob_update AFTER UPDATE OF sha256, size, chunkSize, private ON blob \(bump);
                CREATE TRIGGER catalogue_url_insert AFTER INSERT ON url \(bump);
                CREATE TRIGGER catalogue_url_delete AFTER DELETE ON url \(bump);
                CREATE TRIGGER catalogue_url_update AFTER UPDATE ON url \(bump);
                """)
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
