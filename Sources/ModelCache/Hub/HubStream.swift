import _NIOFileSystem
import Foundation
import Hummingbird
import ModelCacheCore
import NIOCore

/// A response body that streams a byte range of a blob while it is being downloaded: bytes go out as soon as the
/// chunks holding them are written and hashed (checked against the manifest when they came from a peer), from the
/// partial file, then from the stored blob once it is committed. The file's last byte is sent only after the
/// whole-blob check: the client checks nothing but the size, so a download that fails its check
/// (a corrupt origin) leaves the client one byte short, never with a complete wrong file. The connection is then cut;
/// the client retries, and `HubService` answers that retry with the whole file (200), not a Range of it, so no byte
/// of the failed download survives on the client.
struct HubStream: Sendable {
    let store: Store
    let active: ActiveDownloads?
    let digest: BlobDigest?
    let url: String
    let flight: HubFlights.Flight
    /// The connection the bytes go out on (with sendfile(2) when it has a `SendfileHandler`).
    var connection = ServingConnection.unknown
    /// How long the stream waits without a new verified byte before giving up (the client has its own 10 s timeout
    /// and retries with Range).
    var stallLimit: Duration = .seconds(60)
    /// The longest sleep between two looks at the download when nothing notifies: a safety net only (every change
    /// the stream waits for notifies a signal), which also keeps the stall check running.
    var safetyNet: Duration = .seconds(1)

    func body(_ range: Range<Int64>) -> ResponseBody {
        ResponseBody(contentLength: range.count) { [connection] writer in
            let sender = await connection.sender()
            var offset = range.lowerBound
            var lastProgress = ContinuousClock.now
            while offset < range.upperBound {
                // Generations read before looking, so a change that lands while we look wakes the wait below.
                let seenActive = active?.changes.generation, seenEnded = flight.ended.changes.generation
                let partialNow = digest.flatMap { active?.partial($0, includingPrivate: true) }
                let seenPartial = partialNow?.changes.generation
                // While the download runs, its partial file (no index read per turn); once it is gone, the blob.
                if let partial = partialNow {
                    // The last byte only once the whole file matched its digest (it may still be on its way to the store).
                    let limit = partial.isWholeVerified ? range.upperBound : min(range.upperBound, partial.layout.size - 1)
                    let upto = HubStream.verifiedEnd(from: offset, limit: limit, layout: partial.layout, isVerified: partial.isVerified)
                    if upto > offset {
                        // 0 when the file was just committed and moved away: a later turn reads the stored blob.
                        let n = try await HubStream.copy(partial.dataPath, offset..<upto, to: &writer, sender: sender, missingIsEmpty: true)
                        if n > 0 {
                            offset += n
                            lastProgress = .now
                            continue
                        }
                    }
                } else if let blob = try stored() {
                    _ = try await HubStream.copy(blob.path, offset..<range.upperBound, to: &writer, sender: sender)
                    offset = range.upperBound
                    break
                } else if flight.ended.isSet {
                    if try stored() != nil { continue }  // committed just after the check above
                    _ = try await flight.value()  // a failed download's error
                    throw HubStream.Interrupted(detail: "the download of \(url) ended without a stored blob")
                }
                guard ContinuousClock.now - lastProgress < stallLimit else {
                    throw HubStream.Interrupted(detail: "no verified byte of \(url) for \(stallLimit)")
                }
                // Sleep until a chunk is verified, the download starts or ends, or the flight ends.
                var signals: [(signal: ChangeSignal, since: UInt64)] = [(flight.ended.changes, seenEnded)]
                if let p = partialNow, let g = seenPartial {
                    signals.append((p.changes, g))  // also notified when the download ends (ActiveDownloads.unregister)
                } else if let a = active, let g = seenActive {
                    signals.append((a.changes, g))  // the download may start
                }
                try Task.checkCancellation()
                await ChangeSignal.waitAny(signals, atMost: min(safetyNet, stallLimit))
            }
            try await writer.finish(nil)
        }
    }

    /// `range` of a stored blob.
    static func fileBody(_ path: String, _ range: Range<Int64>, connection: ServingConnection) -> ResponseBody {
        ResponseBody(contentLength: range.count) { writer in
            _ = try await HubStream.copy(path, range, to: &writer, sender: await connection.sender())
            try await writer.finish(nil)
        }
    }

    struct Interrupted: Error, CustomStringConvertible { var detail: String; var description: String { detail } }

    private func stored() throws -> BlobRecord? {
        if let d = digest { return try store.lookup(digest: d) }
        return try store.lookup(url: url)
    }

    /// The end of the verified bytes from `offset` (chunk by chunk), at most `limit`.
    static func verifiedEnd(from offset: Int64, limit: Int64, layout: ChunkLayout, isVerified: (Int) -> Bool) -> Int64 {
        var upto = offset
        while upto < limit {
            let c = Int(upto / layout.chunkSize)
            guard c < layout.count, isVerified(c) else { break }
            upto = min(limit, layout.range(of: c).upperBound)
        }
        return upto
    }

    /// Writes `range` of a file (with sendfile(2) when the connection has a `sender`); returns the bytes written.
    /// With `missingIsEmpty`, a file that is gone gives 0.
    static func copy(_ path: String, _ range: Range<Int64>, to writer: inout any ResponseBodyWriter, sender: FileRegionSender? = nil,
                     missingIsEmpty: Bool = false) async throws -> Int64 {
        guard !range.isEmpty else { return 0 }
        if let sender {
            let file: OpenFile
            do {
                file = try OpenFile(path: path)
            } catch let e as OpenFile.Failure where missingIsEmpty && e.missing {
                return 0
            }
            try await sender.send(file, range, to: &writer)
            return Int64(range.count)
        }
        var written: Int64 = 0
        do {
            try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { file in
                for try await chunk in file.readChunks(in: range, chunkLength: .kibibytes(512)) {
                    written += Int64(chunk.readableBytes)
                    try await writer.write(chunk)
                }
            }
        } catch let e as FileSystemError where missingIsEmpty && written == 0 && e.code == .notFound {
            return 0
        }
        return written
    }
}
