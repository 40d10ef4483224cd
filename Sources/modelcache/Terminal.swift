import Foundation
import ModelCacheCore

enum Terminal {
    static var stdoutIsTTY: Bool { isatty(STDOUT_FILENO) == 1 }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data(("modelcache: error: " + message + "\n").utf8))
    }

    static func status(_ line: String) {
        FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line).utf8))
    }

    static func endStatus() {
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}

/// Draws a progress bar on stderr while stdout is a terminal; does nothing otherwise.
final class ProgressBar: Sendable {
    let enabled: Bool
    private let state = Mutex<(start: ContinuousClock.Instant, lastBytes: Int64, lastAt: ContinuousClock.Instant, rate: Double)>(
        (ContinuousClock.now, 0, ContinuousClock.now, 0))

    init(enabled: Bool = Terminal.stdoutIsTTY) { self.enabled = enabled }

    func update(downloaded: Int64, total: Int64?) {
        guard enabled else { return }
        let line = state.withLock { s -> String in
            let now = ContinuousClock.now
            let dt = now - s.lastAt
            let secs = Double(dt.components.seconds) + Double(dt.components.attoseconds) / 1e18
            if secs >= 0.5 {
                let instant = Double(downloaded - s.lastBytes) / secs
                s.rate = s.rate == 0 ? instant : 0.7 * s.rate + 0.3 * instant
                s.lastBytes = downloaded
                s.lastAt = now
            }
            return ProgressText.bar(done: downloaded, total: total, bytesPerSecond: s.rate)
        }
        Terminal.status(line)
    }

    func finish() { if enabled { Terminal.endStatus() } }
}

import Synchronization
