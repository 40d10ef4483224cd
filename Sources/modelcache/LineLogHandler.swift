import Foundation
import Logging
import ModelCacheCore

/// A swift-log handler writing one logfmt or JSON line per event to stderr (`serve --log-format logfmt|json`); the
/// line itself is `LogLine`'s. Each line goes out in one write(2), so lines from concurrent tasks never interleave.
struct LineLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, format: LogFormat, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.format = format
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        let ms = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        let line = LogLine(time: LogLine.timestamp(millisecondsSince1970: ms), level: event.level.rawValue, label: label,
                           message: "\(event.message)", metadata: merged.mapValues { "\($0)" })
        let text = (format == .json ? line.json() : line.logfmt()) + "\n"
        Self.writeToStandardError(Array(text.utf8))
    }

    /// The whole line, retrying short writes and EINTR; a closed stderr drops it (there is nowhere to report that).
    static func writeToStandardError(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count, let base = buffer.baseAddress {
                let n = write(STDERR_FILENO, base + offset, buffer.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}
