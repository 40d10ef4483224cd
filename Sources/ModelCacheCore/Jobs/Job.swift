/// A background fetch owned by a node, shaped after the web's Background Fetch: one or more requests (a model is
/// several files), progress as downloaded / downloadTotal, a result and a failure reason.
public struct Job: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, CaseIterable {
        case pending, downloading
        case pausedOffline = "paused-offline"
        case success, failure

        public var isFinal: Bool { self == .success || self == .failure }
    }

    /// The Background Fetch failure reasons.
    public enum FailureReason: String, Codable, Sendable, CaseIterable {
        case aborted
        case badStatus = "bad-status"
        case fetchError = "fetch-error"
        case quotaExceeded = "quota-exceeded"
        case downloadTotalExceeded = "download-total-exceeded"
    }

    public struct Request: Codable, Sendable, Equatable {
        public var url: String
        public var sha256: BlobDigest?
        /// false: peers only, never the origin (offline classroom). Absent means true.
        public var origin: Bool?
        /// Set when this file is in the cache.
        public var result: BlobDigest?
        public var size: Int64?
        public var path: String?

        public init(url: String, sha256: BlobDigest? = nil, origin: Bool? = nil) {
            self.url = url
            self.sha256 = sha256
            self.origin = origin
        }
    }

    public var id: String
    public var title: String
    public var requests: [Request]
    public var state: State
    public var downloaded: Int64
    /// What the client declared (0 = unknown); exceeding it fails the job with `download-total-exceeded`.
    public var downloadTotal: Int64
    /// Parallel connections to the origin for this job's downloads (nil: the node's default).
    public var connections: Int?
    public var bySource: [String: Int64]
    public var failureReason: FailureReason?
    /// A one-line explanation of the failure (or of the pause).
    public var message: String?
    /// The stable code (`ModelCacheError.code`) of the error behind the failure or the pause, so that a client
    /// reports the same exit status as a fetch without a node.
    public var errorCode: String?
    /// The retry history of the file in progress (attempts, repeated failures), persisted so that a job that fails,
    /// or brings the node down, at every start ends instead of looping. nil once bytes flow.
    public var retry: RetryPolicy.History?
    /// Background Fetch's `result`: "" while running, then "success" or "failure".
    public var result: String { state == .success ? "success" : state == .failure ? "failure" : "" }

    public init(id: String, title: String, requests: [Request], downloadTotal: Int64 = 0) {
        self.id = id
        self.title = title
        self.requests = requests
        self.state = .pending
        self.downloaded = 0
        self.downloadTotal = downloadTotal
        self.bySource = [:]
    }

    enum CodingKeys: String, CodingKey {
        case id, title, requests, state, downloaded, downloadTotal, connections, bySource, failureReason, message, result
        case errorCode, retry
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        title = try c.decode(String.self, forKey: .title)
        requests = try c.decode([Request].self, forKey: .requests)
        state = try c.decode(State.self, forKey: .state)
        downloaded = try c.decode(Int64.self, forKey: .downloaded)
        downloadTotal = try c.decode(Int64.self, forKey: .downloadTotal)
        connections = try c.decodeIfPresent(Int.self, forKey: .connections)
        bySource = try c.decodeIfPresent([String: Int64].self, forKey: .bySource) ?? [:]
        failureReason = try c.decodeIfPresent(FailureReason.self, forKey: .failureReason)
        message = try c.decodeIfPresent(String.self, forKey: .message)
        errorCode = try c.decodeIfPresent(String.self, forKey: .errorCode)
        retry = try c.decodeIfPresent(RetryPolicy.History.self, forKey: .retry)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(title, forKey: .title)
        try c.encode(requests, forKey: .requests)
        try c.encode(state, forKey: .state)
        try c.encode(downloaded, forKey: .downloaded)
        try c.encode(downloadTotal, forKey: .downloadTotal)
        try c.encodeIfPresent(connections, forKey: .connections)
        try c.encode(bySource, forKey: .bySource)
        try c.encodeIfPresent(failureReason, forKey: .failureReason)
        try c.encodeIfPresent(message, forKey: .message)
        try c.encodeIfPresent(errorCode, forKey: .errorCode)
        try c.encodeIfPresent(retry, forKey: .retry)
        try c.encode(result, forKey: .result)
    }

    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f || c == 0x2e
        }
    }
}

/// The job state machine: pure, every transition a job can make, and what the node does next.
public enum JobTransition {
    public enum Event: Equatable, Sendable {
        case start
        case offline(String)
        case online
        case requestDone(index: Int, digest: BlobDigest, size: Int64, path: String)
        case failed(Job.FailureReason, String)
        case abort
    }

    /// Applies an event. Events that make no sense in the current state (say `online` for a finished job) leave it
    /// unchanged: a finished job never changes again.
    public static func apply(_ event: Event, to job: inout Job) {
        guard !job.state.isFinal else { return }
        switch event {
        case .start:
            if job.state == .pending || job.state == .pausedOffline { job.state = .downloading; job.message = nil; job.errorCode = nil }
        case .offline(let why):
            job.state = .pausedOffline
            job.message = why
        case .online:
            if job.state == .pausedOffline { job.state = .downloading; job.message = nil; job.errorCode = nil }
        case .requestDone(let i, let digest, let size, let path):
            guard job.requests.indices.contains(i) else { return }
            job.requests[i].result = digest
            job.requests[i].size = size
            job.requests[i].path = path
            if job.requests.allSatisfy({ $0.result != nil }) {
                job.state = .success
                job.message = nil
            }
        case .failed(let reason, let why):
            job.state = .failure
            job.failureReason = reason
            job.message = why
        case .abort:
            job.state = .failure
            job.failureReason = .aborted
            job.errorCode = ModelCacheError.aborted.code
            job.message = "aborted by the user"
        }
    }

    /// How an engine error maps to the job: pause (the network may come back) or fail with a reason.
    public enum Verdict: Equatable, Sendable {
        case pause(String)
        case fail(Job.FailureReason, String)
    }

    public static func verdict(for error: ModelCacheError) -> Verdict {
        switch RetryPolicy.kind(of: error) {
        case .offline, .transient: .pause(error.description)
        case .final, .protocolViolation: .fail(reason(for: error), error.description)
        }
    }

    /// The Background Fetch failure reason for an error a job gives up on.
    public static func reason(for error: ModelCacheError) -> Job.FailureReason {
        switch error {
        case .originStatus: .badStatus
        case .quotaExceeded, .diskFull: .quotaExceeded
        case .aborted: .aborted
        default: .fetchError
        }
    }
}
