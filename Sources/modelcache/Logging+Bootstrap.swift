import Logging
import ModelCacheCore
import Synchronization

enum Logging {
    private static let done = Mutex(false)

    /// The first call wins: `serve` calls it with its `--log-format` before opening the store.
    static func bootstrapOnce(verbose: Bool, format: LogFormat = .text) {
        let first = done.withLock { d in defer { d = true }; return !d }
        guard first else { return }
        let level: Logger.Level = verbose ? .info : .error
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            case .logfmt, .json:
                var h = LineLogHandler(label: label, format: format, metadataProvider: nil)
                h.logLevel = level
                return h
            }
        }
    }

    static func logger(_ label: String) -> Logger { Logger(label: label) }
}
