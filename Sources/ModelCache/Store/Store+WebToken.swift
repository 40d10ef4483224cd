import Foundation
import ModelCacheCore

extension Store {
    /// Where the browser API's token lives (protocol §12): `<cache-dir>/web-token`, mode 0600.
    public var webTokenPath: String { root + "/web-token" }

    /// The token that starting, aborting, pinning and deleting through the browser API need. Created on first use
    /// (32 random bytes as 64 hex digits) in a file only this user can read; a file left readable by others is
    /// made private again.
    public func webToken() throws -> String {
        let path = webTokenPath
        if let bytes = PosixFile.readAll(path) {
            let s = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if s.utf8.count >= 32 {
                chmod(path, 0o600)
                return s
            }
        }
        var g = SystemRandomNumberGenerator()
        let token = (0..<4).map { _ in PeerTXT.randomNodeID(using: &g) }.joined()
        let tmp = path + ".tmp"
        unlink(tmp)
        let f = try PosixFile(path: tmp, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        fchmod(f.fd, 0o600)  // whatever the umask
        try Array((token + "\n").utf8).withUnsafeBytes { p in try f.write(p, at: 0) }
        try f.sync()
        try PosixFile.rename(tmp, to: path)
        return token
    }
}
