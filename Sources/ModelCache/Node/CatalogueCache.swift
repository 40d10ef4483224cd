import Synchronization
import ModelCacheCore

/// A node's last catalogue, kept while the store's catalogue generation (`Store.catalogueGeneration`) and the shared
/// downloads stay the same. Every peer re-reads the catalogue every few seconds (a 304 when nothing changed); with
/// the catalogue kept, such a poll costs one row read instead of reading, sorting and hashing every blob's entry.
final class CatalogueCache: Sendable {
    private struct Kept: Sendable {
        var generation: Int64
        var active: [Catalogue.Entry]
        var catalogue: Catalogue
    }

    private let kept = Mutex<Kept?>(nil)

    /// The catalogue of `store`'s public blobs plus the downloads in `active` that are not stored yet.
    func catalogue(store: Store, node: String, active: [Catalogue.Entry]) throws -> Catalogue {
        let active = active.sorted { $0.sha256 < $1.sha256 }
        let generation = try store.catalogueGeneration()
        if let k = kept.withLock({ $0 }), k.generation == generation, k.active == active { return k.catalogue }
        // Read after the generation: the entries are at least that new (a change in between only costs a re-read).
        let complete = try store.catalogueEntries()
        let stored = Set(complete.map(\.sha256))
        let catalogue = Catalogue(node: node, blobs: complete + active.filter { !stored.contains($0.sha256) })
        kept.withLock { $0 = Kept(generation: generation, active: active, catalogue: catalogue) }
        return catalogue
    }
}
