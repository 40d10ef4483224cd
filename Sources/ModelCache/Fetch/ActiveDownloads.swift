import Foundation
import ModelCacheCore
import Synchronization

/// The downloads in progress on this node that have a trusted digest: what they hold and what they are fetching,
/// served to peers (protocol §11) so that nodes downloading the same blob share every verified chunk.
public final class ActiveDownloads: Sendable {
    /// How long a claim ("I am fetching this chunk") stands after its last byte arrived: a node that stalls or
    /// vanishes loses its claims within this time.
    public static let claimTTL: Duration = .seconds(10)

    /// The availability answer (its parsing lives in ModelCacheCore, where the fuzz targets reach it).
    public typealias Availability = PeerAvailability

    struct Entry {
        var partial: PartialDownload
        var urls: [String]
        /// False for a private download: used by this node's own readers only, invisible to peers.
        var shared = true
        var claims: [Int: ContinuousClock.Instant] = [:]
    }

    private let state = Mutex<(entries: [BlobDigest: Entry], version: Int)>(([:], 0))
    private let nodeIDBox = Mutex<String?>(nil)
    /// This node's id, sent with availability.
    public var nodeID: String? {
        get { nodeIDBox.withLock { $0 } }
        set { nodeIDBox.withLock { $0 = newValue } }
    }
    private let onMembershipChange: Mutex<(@Sendable () -> Void)?> = Mutex(nil)

    /// Notified whenever `version` moves (a download starts or ends, a claim is made or settled): availability
    /// long-polls and Hub streams wait on it.
    public let changes = ChangeSignal()

    public init() {}

    /// Called when a download starts or ends (the node re-publishes its catalogue version).
    public func setMembershipHandler(_ h: @escaping @Sendable () -> Void) { onMembershipChange.withLock { $0 = h } }

    func register(_ d: BlobDigest, partial: PartialDownload, url: String, shared: Bool = true) {
        state.withLock { s in
            s.entries[d] = Entry(partial: partial, urls: [url], shared: shared)
            s.version += 1
        }
        changes.notify()
        onMembershipChange.withLock { $0 }?()
    }

    func unregister(_ d: BlobDigest) {
        let gone = state.withLock { s in
            defer { s.entries[d] = nil; s.version += 1 }
            return s.entries[d]?.partial
        }
        changes.notify()
        gone?.changes.notify()  // its readers look for the stored blob now
        onMembershipChange.withLock { $0 }?()
    }

    func claim(_ d: BlobDigest, _ chunk: Int) {
        state.withLock { s in
            guard s.entries[d] != nil else { return }
            s.entries[d]!.claims[chunk] = .now
            s.version += 1
        }
        changes.notify()
    }

    /// Bytes of a claimed chunk keep arriving: the claim stands (no version change, nobody needs waking).
    func renew(_ d: BlobDigest, _ chunk: Int) {
        state.withLock { s in
            if s.entries[d]?.claims[chunk] != nil { s.entries[d]!.claims[chunk] = .now }
        }
    }

    /// The chunk is verified (or its fetch failed): the claim ends; the version moves so long-polls wake up.
    func settle(_ d: BlobDigest, _ chunk: Int) {
        state.withLock { s in
            guard s.entries[d] != nil else { return }
            s.entries[d]!.claims[chunk] = nil
            s.version += 1
        }
        changes.notify()
    }

    public var version: Int { state.withLock { $0.version } }

    /// The download in progress for a blob; private ones only when asked for (this node's own Hub endpoint).
    public func partial(_ d: BlobDigest, includingPrivate: Bool = false) -> PartialDownload? {
        state.withLock { s in s.entries[d].flatMap { includingPrivate || $0.shared ? $0.partial : nil } }
    }

    public func availability(_ d: BlobDigest) -> Availability? {
        state.withLock { s in
            guard let e = s.entries[d], e.shared else { return nil }
            let layout = e.partial.layout
            var claims = ChunkSet(capacity: layout.count)
            let now = ContinuousClock.now
            for (c, at) in e.claims where now - at < ActiveDownloads.claimTTL { claims.insert(c) }
            let have = e.partial.verifiedSet
            return Availability(version: s.version, size: layout.size, chunkSize: layout.chunkSize,
                                have: have.hex, claims: claims.hex, complete: have.isComplete, node: nodeIDBox.withLock { $0 })
        }
    }

    public func catalogueEntries() -> [Catalogue.Entry] {
        state.withLock { s in
            s.entries.filter { $0.value.shared }.map { d, e in
                Catalogue.Entry(sha256: d, size: e.partial.layout.size, chunkSize: e.partial.layout.chunkSize,
                                urls: e.urls, etag: e.partial.meta.etag, partial: true)
            }
        }
    }
}
