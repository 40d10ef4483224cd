import Foundation
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

    /// The line `serve` always prints when it starts, whatever the log level: as it is in text, else as one event
    /// (`msg="node serving"` with the values as metadata) so a logfmt or JSON stream holds nothing else.
    static func banner(_ text: String, format: LogFormat, metadata: [String: String]) {
        let ms = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        let line = LogLine(time: LogLine.timestamp(millisecondsSince1970: ms), level: "notice", label: "modelcache.serve",
                           message: "node serving", metadata: metadata)
        switch format {
        case .text: LineLogHandler.writeToStandardError(Array((text + "\n").utf8))
        case .logfmt: LineLogHandler.writeToStandardError(Array((line.logfmt() + "\n").utf8))
        case .json: LineLogHandler.writeToStandardError(Array((line.json() + "\n").utf8))
        }
    }
}
