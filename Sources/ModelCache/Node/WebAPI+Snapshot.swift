import Foundation
import ModelCacheCore

/// The status page's first paint: everything it shows, read at once and put in the page itself, so the page is
/// right before its event stream opens (a screenshot at any moment tells the truth).
extension WebAPI {
    struct Summary: Codable {
        var totals: CacheMetrics.Totals
        var cacheBytes: Int64
        var cacheBlobs: Int
        var cacheLimit: Int64?
    }

    struct Snapshot: Codable {
        var info: [String: String]
        var jobs: [Job]
        var blobs: [WebBlob]
        var peers: [PeerDirectory.Status]
        var summary: Summary
    }

    func summary() throws -> Summary {
        let blobs = try node.store.list()
        return Summary(totals: node.metrics.totals, cacheBytes: blobs.reduce(0) { $0 + $1.size }, cacheBlobs: blobs.count,
                       cacheLimit: node.metrics.cacheLimit)
    }

    /// The snapshot as JSON fit for a `<script type="application/json">` block: every `<` escaped, so no value (a
    /// title or URL from a web app) can close the block.
    func snapshotJSON() async throws -> String {
        let snapshot = Snapshot(
            info: ["id": node.nodeID, "name": node.settings.name, "version": ModelCacheVersion.string,
                   "port": String(await node.listeningPort())],
            jobs: await node.jobs.list(), blobs: try node.store.list().map(WebBlob.init),
            peers: await node.peerStatus(), summary: try summary())
        let text = String(decoding: try WebAPI.encoder.encode(snapshot), as: UTF8.self)
        return text.replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: ">", with: "\\u003e")
            .replacingOccurrences(of: "&", with: "\\u0026")
    }
}
