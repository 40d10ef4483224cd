import ModelCacheCore
import Synchronization

/// The blob records the peer API served last, kept for the life of a transfer: a peer asks for a file chunk by chunk
/// (a Range request per 4 MiB), and each request would otherwise read the index twice and stat the file. A kept
/// record is used only while its file has the stat it had when the record was read (a blob evicted, dropped or
/// replaced has not) and for `lifetime` after that read (a change in the index is seen within it). Private records
/// are not kept: a blob only ever goes from private to public (`Store.markPublic`), and that must show at once.
final class BlobRecordCache: Sendable {
    private struct Kept: Sendable {
        var record: BlobRecord
        var stat: BlobStat
        var readAt: ContinuousClock.Instant
    }

    private let kept = Mutex<[BlobDigest: Kept]>([:])
    let lifetime: Duration
    let capacity: Int

    init(lifetime: Duration = .seconds(5), capacity: Int = 64) {
        self.lifetime = lifetime
        self.capacity = max(1, capacity)
    }

    /// The record of `digest`: a kept one still valid, else `read()`'s (kept when its file could be stat'ed).
    func record(_ digest: BlobDigest, read: () throws -> BlobRecord?) throws -> BlobRecord? {
        let now = ContinuousClock.now
        if let k = kept.withLock({ $0[digest] }), now - k.readAt < lifetime, Store.currentStat(k.record.path) == k.stat {
            return k.record
        }
        let record = try read()
        let stat = record.flatMap { Store.currentStat($0.path) }
        kept.withLock { kept in
            guard let record, !record.isPrivate, let stat else { kept[digest] = nil; return }
            if kept.count >= capacity { kept = kept.filter { now - $0.value.readAt < lifetime } }
            if kept.count >= capacity, let oldest = kept.min(by: { $0.value.readAt < $1.value.readAt })?.key { kept[oldest] = nil }
            kept[digest] = Kept(record: record, stat: stat, readAt: now)
        }
        return record
    }

    var count: Int { kept.withLock { $0.count } }
}
