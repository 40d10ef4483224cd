import Foundation
import ModelCacheCore

enum Terminal {
    static var stdoutIsTTY: Bool { isatty(STDOUT_FILENO) == 1 }
    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }

    /// The terminal's width on stderr (TIOCGWINSZ), else `$COLUMNS`, else 80; read at each redraw, so a resized
    /// window is followed.
    static var columns: Int {
        var size = winsize()
        if withUnsafeMutablePointer(to: &size, { ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), $0) }) == 0, size.ws_col > 0 {
            return Int(size.ws_col)
        }
        if let c = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), (10...1000).contains(c) { return c }
        return 80
    }

    static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func error(_ message: String) {
        write("modelcache: error: " + message + "\n")
    }
}
