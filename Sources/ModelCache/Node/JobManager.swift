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
    /// The running jobs, each with the signal that stops it (abort).
    private var running: [String: ChangeSignal] = [:]
    private var flights: [String: Flight] = [:]
    /// Notified when the network may be back: paused jobs retry at once.
    private let network = ChangeSignal()
    /// What `JobService` runs as child tasks of its task group: jobs, and the downloads they share.
    enum Start: Sendable {
        case job(String, stop: ChangeSignal)
        case flight(Flight, FetchRequest)
        case work(@Sendable () async -> Void)
    }
    private nonisolated let starts: AsyncStream<Start>
    private nonisolated let startContinuation: AsyncStream<Start>.Continuation
    /// The most bytes each running job has had: only bytes beyond it are progress (a try that re-downloads what a
    /// failed one discarded has not moved the job on).
    private var highWater: [String: Int64] = [:]

    init(node: Node, settings: Settings, logger: Logger) {
        self.node = node
        self.settings = settings
        self.logger = logger
        (starts, startContinuation) = AsyncStream<Start>.makeStream()
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
        running[id]?.notify()
        return jobs[id]!
    }

    /// Forgets every finished job (`modelcache jobs clear`); returns how many.
    public func clearFinished() throws -> Int {
        let done = order.filter { jobs[$0]?.state.isFinal ?? false }
        try node.store.deleteJobs(done)
        for id in done { jobs[id] = nil }
        order.removeAll { jobs[$0] == nil }
        return done.count
    }

    /// Called when the network may be back (a peer appeared, a catalogue changed): paused jobs retry at once.
    public nonisolated func networkChanged() { network.notify() }

    // MARK: Running

    /// Runs the jobs and their downloads as child tasks of one task group until cancelled (`JobService`, which the
    /// node's service group cancels on shutdown). A cancelled job is saved as pending, and resumes at the next start.
    nonisolated func serve() async {
        await withDiscardingTaskGroup { group in
            for await start in starts {
                switch start {
                case .job(let id, let stop):
                    group.addTask { await self.runJob(id, stop: stop) }
                case .flight(let flight, let request):
                    let node = self.node
                    group.addTask { await flight.run { try await node.fetch(request) { p in flight.report(p) } } }
                case .work(let work):
                    group.addTask { await work() }
                }
            }
        }
    }

    /// Runs other node-owned work (the Hub endpoint's downloads) in the same task group; false once the service
    /// has stopped (the node is shutting down).
    nonisolated func spawn(_ work: @escaping @Sendable () async -> Void) -> Bool {
        if case .enqueued = startContinuation.yield(.work(work)) { return true }
        return false
    }

    private func launch(_ id: String) {
        let stop = ChangeSignal()
        running[id] = stop
        startContinuation.yield(.job(id, stop: stop))
    }

    /// One job, stopped early by its stop signal (abort) or by the service's cancellation (shutdown).
    private func runJob(_ id: String, stop: ChangeSignal) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.run(id) }
            group.addTask { await stop.wait(since: 0) }
            await group.next()
            group.cancelAll()
        }
        if Task.isCancelled { update(id) { JobTransition.suspend(&$0) } }
        if running[id] === stop { running[id] = nil }
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
        // The job's files' total, or nil when one of them failed the job (a definite error). With `confirm`, the origin
        // is asked even for the files peers list (see `FetchEngine.expectedSize`).
        func filesTotal(confirm: Bool) async -> Int64? {
            var total: Int64 = 0
            for r in job.requests where r.result == nil {
                do {
                    if let size = try await node.engine.expectedSize(
                        FetchRequest(url: r.url, expected: r.sha256, useOrigin: r.origin ?? true), peers: view, confirm: confirm) {
                        total = total.addingReportingOverflow(size).overflow ? .max : total + size
                    }
                } catch let e as ModelCacheError {
                    if case .fail(let reason, let message) = JobTransition.verdict(for: e) {
                        update(id) { $0.errorCode = e.code; JobTransition.apply(.failed(reason, message), to: &$0) }
                        return nil
                    }
                } catch {}
            }
            return total
        }
        let pinned = node.engine.settings.maxCacheSize == nil ? 0 : (try? node.store.list().filter(\.pinned).reduce(Int64(0)) { $0 + $1.size }) ?? 0
        func exceeds(_ total: Int64) -> Bool {
            (job.downloadTotal > 0 && total > job.downloadTotal) || node.engine.settings.maxCacheSize.map { total > $0 - pinned } == true
        }
        guard var total = await filesTotal(confirm: false) else { return false }
        // Before a job fails on its size, sizes that came from peers' catalogues are checked with the origin: a
        // peer's word alone does not fail a job. Without the origin (unreachable, or not to be asked) they stand.
        if exceeds(total) {
            guard let confirmed = await filesTotal(confirm: true) else { return false }
            total = confirmed
        }
        if job.downloadTotal > 0, total > job.downloadTotal {
            update(id) { JobTransition.apply(.failed(.downloadTotalExceeded, "the files total \(total) bytes, more than the declared \(job.downloadTotal)"), to: &$0) }
            return false
        }
        if let limit = node.engine.settings.maxCacheSize {
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
        let flight: Flight
        if let existing = flights[key], existing.join() {
            flight = existing
        } else {
            flight = Flight()
            flights[key] = flight
            guard case .enqueued = startContinuation.yield(.flight(flight, request)) else {
                flights[key] = nil
                throw CancellationError()  // the job service has stopped: the node is shutting down
            }
        }
        defer { if flight.leave(), flights[key] === flight { flights[key] = nil } }
        let base = jobs[id].map(finishedBytes) ?? 0
        // The download, and a follower that copies its progress into the job whenever it reports some.
        return try await withThrowingTaskGroup(of: FetchResult?.self) { group in
            group.addTask {
                var seen: UInt64 = 0
                while !Task.isCancelled {
                    seen = await flight.changed.wait(since: seen)
                    if let current = flight.progress {
                        await self.setProgress(id, base + current.downloaded, finishedSources.merging(current.sources, uniquingKeysWith: +))
                    }
                }
                return nil
            }
            group.addTask {
                try await withTaskCancellationHandler { try await flight.value() } onCancel: { flight.abandon() }
            }
            defer { group.cancelAll() }
            while let r = try await group.next() { if let r { return r } }
            throw CancellationError()
        }
    }

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

    /// Waits for the policy's back-off, or until the network changes (bounded by the back-off).
    private func waitForNetwork(_ wait: Duration) async {
        await network.wait(since: network.generation, atMost: wait)
    }
}
