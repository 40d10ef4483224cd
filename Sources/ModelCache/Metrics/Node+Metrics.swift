import ModelCacheCore

extension Node {
    /// What the metrics' gauges show now: the cache's size, the jobs, the peers.
    func metricsSnapshot() async throws -> CacheMetrics.Snapshot {
        CacheMetrics.Snapshot(cacheBytes: try store.totalSize(), cacheBlobs: try store.blobCount(),
                              jobs: await jobs.list(), peers: await directory.status())
    }

    /// The `/metrics` route's handler.
    var metricsAPI: MetricsAPI {
        MetricsAPI(metrics: metrics, snapshot: { [weak self] in
            guard let self else { throw CancellationError() }
            return try await self.metricsSnapshot()
        }, provedClusterKey: { [keyed = settings.clusterKey != nil] _ in
            // On a keyed node ClusterGuard runs before every route and refuses a request from another machine
            // that does not prove the key (protocol §14), so one that reaches this route has proved it.
            keyed
        }, logger: logger)
    }
}
