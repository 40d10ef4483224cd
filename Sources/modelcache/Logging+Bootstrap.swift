import Logging
import Synchronization

enum Logging {
    private static let done = Mutex(false)

    static func bootstrapOnce(verbose: Bool) {
        let first = done.withLock { d in defer { d = true }; return !d }
        guard first else { return }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = verbose ? .info : .error
            return h
        }
    }

    static func logger(_ label: String) -> Logger { Logger(label: label) }
}
