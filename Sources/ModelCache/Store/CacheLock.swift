#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import ModelCacheCore

/// A failure about the cache folder itself (not the tool's, already in use, missing), with its exit status.
public struct CacheFolderError: Error, CustomStringConvertible, Sendable, Equatable {
    public var code: String
    public var message: String
    public var exitCode: Int32
    public var description: String { message }

    /// A folder the tool refuses to use (exit 73).
    public static func refused(_ message: String) -> CacheFolderError { .init(code: "not-a-cache", message: message, exitCode: 73) }
    /// No cache there (exit 66).
    public static func missing(_ path: String, doing: String) -> CacheFolderError {
        .init(code: "no-cache", message: "there is no cache at \(path), so there is nothing to \(doing): check --cache-dir (or MODELCACHE_DIR)", exitCode: 66)
    }
    /// Another process holds the cache's lock (exit 75).
    public static func busy(_ message: String) -> CacheFolderError { .init(code: "cache-busy", message: message, exitCode: 75) }
    /// The cache cannot be written by this user, or sits on a read-only file system (exit 77).
    public static func readOnly(_ path: String) -> CacheFolderError {
        .init(code: "read-only", message: "the cache at \(path) is read-only for this user (uid \(getuid())): run as the user who owns it, use its node (modelcache serve), or pass --cache-dir a folder you can write", exitCode: 77)
    }
}

/// An exclusive `flock` on a file (kept open while held; closing it, or the process ending, releases it).
public final class FileLock: Sendable {
    public let path: String
    let fd: Int32

    init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Takes the lock if free; nil if another open file holds it.
    public static func tryAcquire(_ path: String) throws(ModelCacheError) -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PosixFile.error(path, "open") }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return FileLock(path: path, fd: fd) }
        let e = errno
        close(fd)
        guard e == EWOULDBLOCK || e == EINTR else { throw .io(path: path, detail: "flock: \(String(cString: strerror(e)))") }
        return nil
    }

    /// Replaces the file's contents (the holder's description) while holding the lock.
    public func record(_ text: String) {
        ftruncate(fd, 0)
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }
}

/// The cache's lock, `<cache>/lock`: held by the node for its lifetime, and by `add`, `rm`, `pin`, `unpin` and
/// `verify` when no node runs. The file says who holds it: `<pid> <command>`.
public enum CacheLock {
    public struct Holder: Sendable, Equatable {
        public var pid: Int32
        public var command: String
    }

    public static func path(_ root: String) -> String { root + "/lock" }

    public static func tryAcquire(root: String, command: String) throws(ModelCacheError) -> FileLock? {
        guard let lock = try FileLock.tryAcquire(path(root)) else { return nil }
        lock.record("\(getpid()) \(command)\n")
        return lock
    }

    /// Who holds it, from the file (nil when unreadable or malformed).
    public static func holder(root: String) -> Holder? {
        guard let bytes = PosixFile.readAll(path(root)) else { return nil }
        let parts = String(decoding: bytes.prefix(256), as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count >= 2, let pid = Int32(parts[0]), pid > 0 else { return nil }
        return Holder(pid: pid, command: String(parts[1]))
    }

    /// Waits (polling, up to `timeout`) for the lock.
    public static func acquire(root: String, command: String, timeout: Duration) async throws -> FileLock? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let lock = try tryAcquire(root: root, command: command) { return lock }
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// One download of a URL at a time across processes: an exclusive `flock` on `partial/<sha256(url)>.lock`.
/// The holder removes the file before releasing it; a waiter that wakes on a removed file takes the lock again.
public final class DownloadLock: Sendable {
    let lock: FileLock

    init(_ lock: FileLock) { self.lock = lock }

    /// Removes the lock file, then releases the lock (when the last reference goes).
    public func release() { unlink(lock.path) }

    /// Waits (polling, until cancelled or `timeout`) for the URL's lock.
    public static func acquire(partialDir: String, url: String, timeout: Duration = .seconds(6 * 3600)) async throws -> DownloadLock {
        let path = partialDir + "/" + BlobDigest.of(Array(url.utf8)).hex + ".lock"
        let deadline = ContinuousClock.now + timeout
        while true {
            if let lock = try FileLock.tryAcquire(path) {
                // The previous holder may have removed the file between our open and our flock: lock the file that is there.
                var held = stat(), named = stat()
                if fstat(lock.fd, &held) == 0, stat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                    return DownloadLock(lock)
                }
                continue
            }
            guard ContinuousClock.now < deadline else {
                throw ModelCacheError.io(path: path, detail: "another process has been downloading \(url) for too long; stop it or remove its partial download")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
