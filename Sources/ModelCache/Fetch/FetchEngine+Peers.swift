import Foundation
import Logging
import ModelCacheCore

extension FetchEngine {
    /// Asks up to `manifestQuorum` holders of `d` for its manifest and keeps the peers whose manifests agree with
    /// the majority. A peer whose manifest disagrees with the same chunk size is lying: it is blamed.
    func agreeOnManifest(_ d: BlobDigest, peers: PeerView, size: Int64?) async -> (Manifest?, [Source]) {
        let holders = peers.holders(of: d).filter { size == nil || $0.1.size == size }
        guard !holders.isEmpty else { return (nil, []) }
        let client = PeerClient(http: http, clusterKey: settings.clusterKey, logger: logger)
        let asked = Array(holders.prefix(settings.manifestQuorum))
        var answers: [(PeerView.Peer, Manifest)] = []
        await withTaskGroup(of: (PeerView.Peer, Manifest?).self) { group in
            for (peer, _) in asked {
                group.addTask { (peer, try? await client.manifest(peer.address, d)) }
            }
            for await (peer, m) in group {
                if let m, size == nil || m.size == size { answers.append((peer, m)) }
            }
        }
        var votes: [Manifest: Int] = [:]
        for (_, m) in answers { votes[m, default: 0] += 1 }
        guard let (best, _) = votes.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key.chunkSize > $1.key.chunkSize) }) else {
            return (nil, [])
        }
        for (peer, m) in answers where m != best && m.chunkSize == best.chunkSize {
            logger.warning("peer's manifest disagrees with the others", metadata: ["peer": "\(peer.name)", "blob.sha256": "\(d)"])
            peers.blame(peer.name, "manifest of \(d.short) disagrees with other peers")
        }
        let agreeing = Set(answers.filter { $0.1 == best }.map(\.0.name))
        // Peers not asked are used too when their catalogue entry matches the agreed layout.
        let askedNames = Set(asked.map(\.0.name))
        let usable = holders.filter { holder in
            agreeing.contains(holder.0.name) || (!askedNames.contains(holder.0.name) && holder.1.chunkSize == best.chunkSize)
        }
        let sources = usable.map { (peer, _) in
            Source(id: .peer(peer.name),
                   info: OriginInfo(requestedURL: peer.address.blobURL(d), finalURL: peer.address.blobURL(d), size: best.size,
                                    etag: nil, lastModified: nil, acceptsRanges: true, digest: d),
                   connections: settings.peerConnections, verifyAgainst: best.chunks)
        }
        return (best, sources)
    }

    /// After a failed whole-blob check: fetch every peer-served chunk again from the origin, and blame each peer
    /// whose bytes differ from the origin's.
    func refetchPeerChunks(servedBy: [Int: SourceID], digests: inout [Int: BlobDigest], partial: PartialDownload,
                           info: OriginInfo, origin: OriginClient, counters: TransferCounters, peers: PeerView) async throws {
        var blamed = Set<String>()
        for (chunk, source) in servedBy.sorted(by: { $0.key < $1.key }) where source.kind == .peer {
            let digest = try await fetchChunk(chunk, from: .origin, info: info, client: origin, range: partial.layout.range(of: chunk),
                                              counters: counters, write: { try partial.write($0, at: $1) })
            if digest != digests[chunk] && blamed.insert(source.name).inserted {
                logger.warning("peer served bytes that differ from the origin's", metadata: ["peer": "\(source.name)", "chunk": "\(chunk)"])
                peers.blame(source.name, "served chunk \(chunk) with bytes that differ from the origin's")
            }
            digests[chunk] = digest
            try partial.recordVerified(chunk: chunk, digest: digest)
        }
    }
}

extension OriginClient {
    /// Errors after which peers may still serve the blob (the origin is down or unreachable, not refusing).
    static func isUnreachable(_ error: any Error) -> Bool {
        switch error as? ModelCacheError {
        case .originUnreachable?, .peerUnreachable?, .bodyCut?: return true
        case .originStatus(_, let status, _)?: return status >= 500 || status == 408 || status == 429
        default: return false
        }
    }
}
