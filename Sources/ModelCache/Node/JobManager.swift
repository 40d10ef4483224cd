import Foundation
import Logging
import ModelCacheCore

/// Owns the node's background fetches: creates, persists, runs, pauses while offline, resumes, aborts, and
/// shares one download between jobs that want the same file (single flight).
public actor JobManager {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case invalidID(String)
        case duplicate(String)
        case unknown(String)
        case noRequests

        public var description: String {
            switch self {
            case .invalidID(let id): "invalid job id '\(id)': use 1-128 letters, digits, '-', '_' or '.'"
            case .duplicate(let id): "a job with id '\(id)' exists"
            case .unknown(let id): "no job with id '\(id)'"
            case .noRequests: "a job needs at least one request"
            }
        }
    }

    public struct Settings: Sendable {
        /// Backoff between a job's tries (offline or after a failure): first and longest wait.
        public var offlineFirstRetry: Duration = .milliseconds(500)
        public var offlineMaxRetry: Duration = .seconds(30)
        /// A file that failed the same way this many times in a row (or whose tries stopped the node this many times)
        /// fails the job; so does one that failed `maxAttempts` times without progress.
        public var sameFailureLimit = 5
        public var maxAttempts = 10
        var retryPolicy: RetryPolicy {
            RetryPolicy(maxAttempts: maxAttempts, sameFailureLimit: sameFailureLimit, baseDelay: offlineFirstRetry,
                        maxDelay: offlineMaxRetry, jitter: 0.2)
        }
        /// Chunk size for new downloads (protocol §2).
        public var chunkSize: Int64 = ChunkLayout.defaultChunkSize
        public init() {}
    }

    let node: Node
    let settings: Settings
    let logger: Logger
    public nonisolated let events = EventHub<Job>()
    private var jobs: [String: Job] = [:]
    private var order: [String] = []
    private var tasks: [String: Task<Void, Never>] = [:]
    private var flights: [String: (task: Task<FetchResult, any Error>, waiters: Int)] = [:]
    private var flightProgress: [String: FetchProgress] = [:]
    private var networkGeneration = 0
    /// The most bytes each running job has had: only bytes beyond it are progress (a try that re-downloads what a
    /// failed one discarded has not moved the job on).
    private var highWater: [String: Int64] = [:]

    init(node: Node, settings: Settings, logger: Logger) {
        self.node = node
        self.settings = settings
        self.logger = logger
    }

    /// Loads the persisted jobs and resumes every unfinished one (after a crash or restart).
    func resumeUnfinished() throws {
        for job in try node.store.loadJobs() {
            jobs[job.id] = job
            order.append(job.id)
            if !job.state.isFinal { launch(job.id) }
        }
    }

    public func create(id: String?, title: String, requests: [Job.Request], downloadTotal: Int64 = 0,
                       connections: Int? = nil) throws -> Job {
        let id = id ?? UUID().uuidString.lowercased()
        guard Job.isValidID(id) else { throw Failure.invalidID(id) }
        guard jobs[id] == nil else { throw Failure.duplicate(id) }
        guard !requests.isEmpty else { throw Failure.noRequests }
        for r in requests { try FetchEngine.validate(url: r.url) }
        var job = Job(id: id, title: title, requests: requests, downloadTotal: downloadTotal)
        job.connections = connections.map { max(1, min($0, 64)) }
        jobs[id] = job
        order.append(id)
        try node.store.saveJob(job)
        events.publish(job)
        launch(id)
        return job
    }

    public func get(_ id: String) throws -> Job {
        guard let j = jobs[id] else { throw Failure.unknown(id) }
        return j
    }

    public func list() -> [Job] { order.compactMap { jobs[$0] } }

    /// The job once it has succeeded or failed (cancelling the wait leaves the job running).
    public func waitUntilFinal(_ id: String) async throws -> Job {
        let stream = events.subscribe()
        let now = try get(id)
        if now.state.isFinal { return now }
        for await j in stream where j.id == id && j.state.isFinal { return j }
        try Task.checkCancellation()
        return try get(id)  // the hub closed: the node is shutting down
    }

    public func abort(_ id: String) throws -> Job {
        guard jobs[id] != nil else { throw Failure.unknown(id) }
        update(id) { JobTransition.apply(.abort, to: &$0) }
        tasks[id]?.cancel()
        tasks[id] = nil
        return jobs[id]!
    }

    /// Called when the network may be back (a peer appeared, a catalogue changed): paused jobs retry at once.
    public func networkChanged() { networkGeneration += 1 }

    // MARK: Running

    private func launch(_ id: String) {
        tasks[id] = Task { await self.run(id) }
    }

    private func update(_ id: String, _ change: (inout Job) -> Void) {
        guard var j = jobs[id] else { return }
        let before = j
        change(&j)
        guard j != before else { return }
        jobs[id] = j
        if j.state != before.state || j.requests != before.requests || j.failureReason != before.failureReason || j.retry != before.retry {
            do { try node.store.saveJob(j) } catch { logger.error("cannot persist job", metadata: ["job.id": "\(id)", "error": "\(error)"]) }
        }
        events.publish(j)
    }

    private func run(_ id: String) async {
        defer { highWater[id] = nil }
        update(id) { JobTransition.apply(.start, to: &$0) }
        guard await checkLimits(id) else { return }
        let policy = settings.retryPolicy
        while let job = jobs[id], !job.state.isFinal, !Task.isCancelled {
            guard let index = job.requests.firstIndex(where: { $0.result == nil }) else { return }
            let r = job.requests[index]
            // The try is counted (and persisted) before it starts: a job that stops the node at every start ends.
            var history = job.retry ?? .init()
            if case .giveUp(let why)? = policy.start(&history) {
                update(id) { $0.retry = history; $0.errorCode = "fetch-error"; JobTransition.apply(.failed(.fetchError, why), to: &$0) }
                logger.warning("job failed", metadata: ["job.id": "\(id)", "reason": "\(why)"])
                return
            }
            update(id) { $0.retry = history }
            let request = FetchRequest(url: r.url, expected: r.sha256, connections: job.connections ?? 4,
                                       chunkSize: settings.chunkSize, useOrigin: r.origin ?? true)
            let finishedSources = job.bySource
            do {
                let result = try await sharedFetch(request, for: id, finishedSources: finishedSources)
                update(id) { j in
                    j.retry = nil
                    JobTransition.apply(.online, to: &j)
                    j.bySource = finishedSources.merging(result.sources, uniquingKeysWith: +)
                    JobTransition.apply(.requestDone(index: index, digest: result.sha256, size: result.size, path: result.path), to: &j)
                    j.downloaded = self.finishedBytes(j)
                }
            } catch {
                if error is CancellationError || Task.isCancelled {
                    update(id) { j in if var h = j.retry { policy.cancelled(&h); j.retry = h } }
                    return
                }
                let e = (error as? ModelCacheError) ?? .io(path: r.url, detail: "\(error)")
                var h = jobs[id]?.retry ?? .init()  // nil: bytes flowed during this try
                switch policy.decide(after: e, &h, sample: .random(in: 0..<1)) {
                case .giveUp(let why):
                    update(id) { $0.retry = h; $0.errorCode = e.code; JobTransition.apply(.failed(JobTransition.reason(for: e), why), to: &$0) }
                    logger.warning("job failed", metadata: ["job.id": "\(id)", "reason": "\(why)"])
                    return
                case .pause(let wait):
                    update(id) { $0.retry = h; $0.errorCode = e.code; JobTransition.apply(.offline(e.description), to: &$0) }
                    logger.info("job paused offline", metadata: ["job.id": "\(id)", "reason": "\(e.description)"])
                    await waitForNetwork(wait)
                case .retry(let wait):
                    update(id) { $0.retry = h; $0.errorCode = e.code; $0.message = "retrying after: \(e.description)" }
                    logger.info("job retrying", metadata: ["job.id": "\(id)", "reason": "\(e.description)"])
                    await waitForNetwork(wait)
                }
            }
        }
    }

    private func finishedBytes(_ j: Job) -> Int64 { j.requests.reduce(0) { $0 + ($1.size ?? 0) } }

    /// Fails the job before any download when its total is known to exceed the declared total or the cache limit.
    private func checkLimits(_ id: String) async -> Bool {
        guard let job = jobs[id] else { return false }
        await node.directory.refreshAll()  // fresh catalogues: a file peers list is not asked of a dead origin first
        let view = await node.directory.view()
        var total: Int64 = 0
        for r in job.requests where r.result == nil {
            do {
                if let size = try await node.engine.expectedSize(
                    FetchRequest(url: r.url, expected: r.sha256, useOrigin: r.origin ?? true), peers: view) {
                    total = total.addingReportingOverflow(size).overflow ? .max : total + size  // sizes are the origins' word
                }
            } catch let e as ModelCacheError {
                if case .fail(let reason, let message) = JobTransition.verdict(for: e) {
                    update(id) { $0.errorCode = e.code; JobTransition.apply(.failed(reason, message), to: &$0) }
                    return false
                }
            } catch {}
        }
        if job.downloadTotal > 0, total > job.downloadTotal {
            update(id) { JobTransition.apply(.failed(.downloadTotalExceeded, "the files total \(total) bytes, more than the declared \(job.downloadTotal)"), to: &$0) }
            return false
        }
        if let limit = node.engine.settings.maxCacheSize {
            let pinned = (try? node.store.list().filter(\.pinned).reduce(Int64(0)) { $0 + $1.size }) ?? 0
            if total > limit - pinned {
                let e = ModelCacheError.quotaExceeded(needed: total, limit: limit)
                update(id) { JobTransition.apply(.failed(.quotaExceeded, e.description), to: &$0) }
                return false
            }
        }
        if job.downloadTotal == 0, total > 0 { update(id) { $0.downloadTotal = total } }
        return true
    }

    /// One download per file, however many jobs want it; progress is reported to each waiting job.
    /// `finishedSources`: the job's bytes per source from its finished files, to which the download's are added live.
    private func sharedFetch(_ request: FetchRequest, for id: String, finishedSources: [String: Int64]) async throws -> FetchResult {
        let key = request.expected?.hex ?? request.url
        let flight: Task<FetchResult, any Error>
        if let existing = flights[key] {
            flights[key]!.waiters += 1
            flight = existing.task
        } else {
            let node = self.node
            flight = Task {
                try await node.fetch(request) { p in Task { await self.progress(key, p) } }
            }
            flights[key] = (flight, 1)
        }
        defer { leave(key, flight) }
        let base = jobs[id].map(finishedBytes) ?? 0
        let follower = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                if let current = self.currentProgress(key) {
                    self.setProgress(id, base + current.downloaded, finishedSources.merging(current.sources, uniquingKeysWith: +))
                }
            }
        }
        defer { follower.cancel() }
        return try await withTaskCancellationHandler {
            try await flight.value
        } onCancel: {
            Task { await self.abandon(key, flight) }
        }
    }

    private func progress(_ key: String, _ p: FetchProgress) { flightProgress[key] = p }
    private func currentProgress(_ key: String) -> FetchProgress? { flightProgress[key] }
    private func setProgress(_ id: String, _ n: Int64, _ sources: [String: Int64]) {
        guard let j = jobs[id], !j.state.isFinal, j.downloaded != n || j.bySource != sources else { return }
        // Bytes flow again: a paused job runs, and (past what earlier tries reached) its retry history starts over.
        let flowing = n > j.downloaded
        let progressed = n > max(highWater[id] ?? 0, j.downloaded)
        if progressed { highWater[id] = n }
        update(id) { j in
            j.downloaded = n
            j.bySource = sources
            if progressed { j.retry = nil }
            if flowing {
                if j.state == .downloading { j.message = nil }
                JobTransition.apply(.online, to: &j)
            }
        }
    }

    /// A job stops waiting for a finished (or failed) download.
    private func leave(_ key: String, _ flight: Task<FetchResult, any Error>) {
        guard let f = flights[key], f.task == flight else { return }
        if f.waiters <= 1 {
            flights[key] = nil
            flightProgress[key] = nil
        } else {
            flights[key]!.waiters = f.waiters - 1
        }
    }

    /// An aborted job gives up a download: it is cancelled only if no other job waits for it.
    private func abandon(_ key: String, _ flight: Task<FetchResult, any Error>) {
        guard let f = flights[key], f.task == flight, f.waiters <= 1 else { return }
        flight.cancel()
    }

    /// Waits for the policy's back-off, or until the network changes (bounded by the back-off).
    private func waitForNetwork(_ wait: Duration) async {
        let generation = networkGeneration
        let deadline = ContinuousClock.now + wait
        while ContinuousClock.now < deadline && networkGeneration == generation && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
