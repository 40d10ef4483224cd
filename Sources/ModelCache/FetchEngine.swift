import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import ModelCacheCore
import NIOCore

/// Fetches a URL into the store: cache hit, else chunks in parallel from the sources that hold them, each chunk
/// hashed as it streams, the whole blob verified before commit. Interrupted runs resume from `partial/`.
public final class FetchEngine: Sendable {
    public struct Settings: Sendable {
        public var scheduler = ChunkScheduler.Settings()
        /// Attempts for the HEAD probe and for a whole single-stream download.
        public var probeAttempts = 4
        public init() {}
    }

    public let store: Store
    public let http: HTTPClient
    public let settings: Settings
    let logger: Logger

    public init(store: Store, http: HTTPClient, settings: Settings = .init(), logger: Logger) {
        self.store = store
        self.http = http
        self.settings = settings
        self.logger = logger
    }

    public static func validate(url: String) throws(ModelCacheError) {
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = u.host, !host.isEmpty else { throw .malformedURL(url) }
    }

    /// A stored blob for this request, without any network request.
    public func cached(_ request: FetchRequest) throws -> BlobRecord? {
        if let r = try store.lookup(url: request.url), request.expected == nil || request.expected == r.sha256 { return r }
        if let e = request.expected, let r = try store.lookup(digest: e) {
            try store.addURL(request.url, to: e)
            return r
        }
        return nil
    }

    public func fetch(_ request: FetchRequest, progress: (@Sendable (FetchProgress) -> Void)? = nil) async throws -> FetchResult {
        try FetchEngine.validate(url: request.url)
        let started = ContinuousClock.now
        func seconds() -> Double {
            let d = ContinuousClock.now - started
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        if let hit = try cached(request) {
            try store.touch(hit.sha256)
            logger.debug("cache hit", metadata: ["url": "\(request.url)", "blob.sha256": "\(hit.sha256)"])
            return FetchResult(path: hit.path, sha256: hit.sha256, size: hit.size, sources: [:], seconds: seconds(), cached: true, resumedBytes: 0)
        }
        let origin = OriginClient(http: http, logger: logger)
        let info = try await probe(origin, request.url)
        if let d = info.digest, let hit = try store.lookup(digest: d), request.expected == nil || request.expected == d {
            try store.addURL(request.url, to: d, etag: info.etag, lastModified: info.lastModified)
            try store.touch(d)
            return FetchResult(path: hit.path, sha256: d, size: hit.size, sources: [:], seconds: seconds(), cached: true, resumedBytes: 0)
        }
        guard let size = info.size else {
            throw ModelCacheError.protocolViolation("the origin gives no size for \(request.url) (no Content-Length); it cannot be fetched in verified chunks")
        }
        let expected = request.expected ?? info.digest
        let meta = PartialDownload.Meta(url: request.url, size: size, chunkSize: request.chunkSize,
                                        etag: info.etag, lastModified: info.lastModified, expected: expected)
        let (partial, resumed) = try PartialDownload.open(in: store, meta: meta, logger: logger)
        let counters = TransferCounters()
        let layout = partial.layout
        var have = ChunkSet(capacity: layout.count)
        for c in resumed.keys { have.insert(c) }
        let resumedBytes = resumed.keys.reduce(Int64(0)) { $0 + layout.length(of: $1) }
        counters.downloaded.store(resumedBytes, ordering: .relaxed)

        let reporter = progress.map { p in
            Task {
                while !Task.isCancelled {
                    p(FetchProgress(downloaded: counters.downloaded.load(ordering: .relaxed), total: size))
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
        }
        defer { reporter?.cancel() }

        var digests = resumed
        do {
            if !have.isComplete {
                if info.acceptsRanges && layout.count > 1 {
                    do {
                        digests = try await parallel(request, info, partial, have: have, digests: resumed, counters: counters)
                    } catch is OriginClient.RangeIgnored {
                        logger.info("origin ignores Range; falling back to one stream", metadata: ["url": "\(request.url)"])
                        digests = try await singleStream(request, info, partial, digests: digests, counters: counters, origin: origin)
                    }
                } else {
                    digests = try await singleStream(request, info, partial, digests: digests, counters: counters, origin: origin)
                }
            }
        } catch {
            if case .originChanged? = error as? ModelCacheError { partial.discard() }
            throw error
        }

        let whole = try partial.wholeDigest()
        if let expected, whole != expected {
            partial.discard()
            throw ModelCacheError.digestMismatch(expected: expected, got: whole)
        }
        let manifest = try Manifest(sha256: whole, layout: layout, chunks: (0..<layout.count).map { digests[$0]! })
        let record = try store.commit(file: partial.dataPath, manifest: manifest, url: request.url,
                                      etag: info.etag, lastModified: info.lastModified)
        partial.discard()
        progress?(FetchProgress(downloaded: size, total: size))
        logger.info("fetched", metadata: ["url": "\(request.url)", "blob.sha256": "\(whole)", "blob.size": "\(size)",
                                          "seconds": "\(seconds())"])
        return FetchResult(path: record.path, sha256: whole, size: size, sources: counters.sources,
                           seconds: seconds(), cached: false, resumedBytes: resumedBytes)
    }

    func probe(_ origin: OriginClient, _ url: String) async throws -> OriginInfo {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await origin.probe(url)
            } catch {
                guard OriginClient.isRetryable(error), attempt < settings.probeAttempts else { throw error }
                logger.debug("probe failed, retrying", metadata: ["url": "\(url)", "error": "\(error)"])
                try await Task.sleep(for: ChunkScheduler(layout: try ChunkLayout(size: 0), settings: settings.scheduler).backoff(attempt: attempt))
            }
        }
    }

    /// Parallel Range GETs, one worker per connection, driven by the scheduler.
    func parallel(_ request: FetchRequest, _ info: OriginInfo, _ partial: PartialDownload, have: ChunkSet,
                  digests: [Int: BlobDigest], counters: TransferCounters) async throws -> [Int: BlobDigest] {
        var scheduler = ChunkScheduler(layout: partial.layout, alreadyHave: have, settings: settings.scheduler)
        scheduler.addSource(.origin, has: nil)
        let run = ChunkRun(scheduler: scheduler, digests: digests)
        let origin = OriginClient(http: http, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, min(request.connections, 32)) {
                group.addTask {
                    try await self.originWorker(run: run, origin: origin, url: request.url, info: info, partial: partial, counters: counters)
                }
            }
            try await group.waitForAll()
        }
        return await run.digests
    }

    func originWorker(run: ChunkRun, origin: OriginClient, url: String, info: OriginInfo,
                      partial: PartialDownload, counters: TransferCounters) async throws {
        let layout = partial.layout
        while true {
            try Task.checkCancellation()
            switch try await run.next(for: .origin) {
            case .finished, .retire:
                return
            case .idle:
                try await Task.sleep(for: .milliseconds(20))
            case .waitUntil(let t):
                try await Task.sleep(until: await run.instant(at: t), clock: .continuous)
            case .fetch(let chunk):
                let range = layout.range(of: chunk)
                var hasher = SHA256()
                var got: Int64 = 0
                do {
                    try await origin.fetch(url: url, range: range, info: info) { buffer, offset in
                        try buffer.withUnsafeReadableBytes { (p: UnsafeRawBufferPointer) throws(ModelCacheError) in
                            try partial.write(p, at: offset)
                            hasher.update(bufferPointer: p)
                        }
                        got += Int64(buffer.readableBytes)
                        counters.received(buffer.readableBytes, from: .origin)
                    }
                    let digest = BlobDigest(hasher.finalize())
                    try partial.recordVerified(chunk: chunk, digest: digest)
                    try await run.verified(chunk: chunk, digest: digest, from: .origin)
                } catch {
                    counters.discarded(got)
                    if error is OriginClient.RangeIgnored || !OriginClient.isRetryable(error) {
                        await run.release(chunk: chunk, from: .origin)
                        throw error
                    }
                    logger.debug("chunk failed", metadata: ["chunk": "\(chunk)", "source": "origin", "error": "\(error)"])
                    try await run.failed(chunk: chunk, from: .origin, corrupt: false, error: error)
                }
            }
        }
    }

    /// One GET of the whole body, for servers without Range support. Chunks are cut, hashed and journalled as the
    /// stream passes their ends; chunks verified by an earlier run are read past without being written.
    func singleStream(_ request: FetchRequest, _ info: OriginInfo, _ partial: PartialDownload,
                      digests initial: [Int: BlobDigest], counters: TransferCounters, origin: OriginClient) async throws -> [Int: BlobDigest] {
        let layout = partial.layout
        var digests = initial
        var attempt = 0
        let probeScheduler = ChunkScheduler(layout: layout, settings: settings.scheduler)
        while true {
            attempt += 1
            var hasher = SHA256()
            var streamed: Int64 = 0
            do {
                try await origin.fetch(url: request.url, range: nil, info: info) { buffer, offset in
                    var slice = buffer
                    var position = offset
                    while slice.readableBytes > 0 {
                        let chunk = Int(position / layout.chunkSize)
                        let end = layout.range(of: chunk).upperBound
                        let n = Int(min(Int64(slice.readableBytes), end - position))
                        let piece = slice.readSlice(length: n)!
                        if digests[chunk] == nil {
                            try piece.withUnsafeReadableBytes { (p: UnsafeRawBufferPointer) throws(ModelCacheError) in
                                try partial.write(p, at: position)
                                hasher.update(bufferPointer: p)
                            }
                            streamed += Int64(n)
                            counters.received(n, from: .origin)
                        }
                        position += Int64(n)
                        if position == end, digests[chunk] == nil {
                            let d = BlobDigest(hasher.finalize())
                            try partial.recordVerified(chunk: chunk, digest: d)
                            digests[chunk] = d
                            hasher = SHA256()
                            streamed = 0
                        }
                    }
                }
                return digests
            } catch {
                counters.discarded(streamed)
                guard OriginClient.isRetryable(error), attempt < settings.scheduler.maxAttempts else { throw error }
                try await Task.sleep(for: probeScheduler.backoff(attempt: attempt))
            }
        }
    }
}
