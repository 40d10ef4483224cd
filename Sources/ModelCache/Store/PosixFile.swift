#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
#if os(Linux)
import CLinuxIO
#endif
import ModelCacheCore

/// A thin owner of a POSIX file descriptor: positioned reads and writes, fsync, preallocation.
/// Hand-written over Glibc rather than NIOFileSystem because chunk writers need synchronous `pwrite` at arbitrary
/// offsets from many tasks on one descriptor, and `posix_fallocate` (to fail with ENOSPC before downloading).
public final class PosixFile: Sendable {
    public let fd: Int32
    public let path: String

    public init(path: String, flags: Int32, mode: mode_t = 0o644) throws(ModelCacheError) {
        let fd = open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw PosixFile.error(path, "open") }
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    public static func error(_ path: String, _ op: String, needed: Int64 = 0) -> ModelCacheError {
        let e = errno
        if e == ENOSPC || e == EDQUOT { return .diskFull(path: path, needed: needed) }
        return .io(path: path, detail: "\(op): \(String(cString: strerror(e)))")
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(ModelCacheError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixFile.error(path, "write", needed: Int64(bytes.count))
            }
            done += n
        }
    }

    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(ModelCacheError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixFile.error(path, "read")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public func append(_ text: String) throws(ModelCacheError) {
        var bytes = Array(text.utf8)
        let count = bytes.count
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + done, count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixFile.error(path, "append", needed: Int64(count))
            }
            done += n
        }
    }

    /// Starts writing `range` back to the disk and returns at once (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so
    /// that the fsync before a commit finds most pages already written instead of flushing the whole file serially
    /// after the last byte. Best effort: a file system that cannot (or another OS) leaves the work to `sync()`.
    public func startWriteBack(_ range: Range<Int64>) {
        guard range.lowerBound >= 0, !range.isEmpty else { return }
        #if os(Linux)
        _ = modelcache_start_writeback(fd, Int(range.lowerBound), Int(range.count))
        #endif
    }

    public func sync() throws(ModelCacheError) {
        guard fsync(fd) == 0 else { throw PosixFile.error(path, "fsync") }
    }

    public func size() throws(ModelCacheError) -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw PosixFile.error(path, "stat") }
        return Int64(st.st_size)
    }

    /// Reserves `size` bytes so that a full disk fails now, not after gigabytes of download.
    public func preallocate(_ size: Int64) throws(ModelCacheError) {
        guard size > 0 else { return }
        let r = posix_fallocate(fd, 0, off_t(size))
        if r == 0 { return }
        if r == ENOSPC || r == EDQUOT { throw .diskFull(path: path, needed: size) }
        if r == EOPNOTSUPP || r == EINVAL {  // filesystems without fallocate: size the file instead
            guard ftruncate(fd, off_t(size)) == 0 else { throw PosixFile.error(path, "truncate", needed: size) }
            return
        }
        throw .io(path: path, detail: "fallocate: \(String(cString: strerror(r)))")
    }

    public static func readAll(_ path: String) -> [UInt8]? {
        guard let f = try? PosixFile(path: path, flags: O_RDONLY), let size = try? f.size() else { return nil }
        var out = [UInt8](repeating: 0, count: Int(size))
        let n = out.withUnsafeMutableBytes { (try? f.read(into: $0, at: 0)) ?? -1 }
        guard n >= 0 else { return nil }
        return Array(out.prefix(n))
    }

    public static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let tmp = path + ".tmp"
        let f = try PosixFile(path: tmp, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try bytes.withUnsafeBytes { p in try f.write(p, at: 0) }
        try f.sync()
        try rename(tmp, to: path)
    }

    public static func rename(_ from: String, to: String) throws(ModelCacheError) {
        guard Glibc.rename(from, to) == 0 else { throw PosixFile.error(to, "rename") }
        syncDirectory(of: to)
    }

    /// Makes a rename durable.
    public static func syncDirectory(of path: String) {
        let dir = parent(path)
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    public static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_size)
    }

    public static func makeDirectories(_ path: String) throws(ModelCacheError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw PosixFile.error(current, "mkdir") }
        }
    }

    public static func removeTree(_ path: String) {
        guard let dir = opendir(path) else { unlink(path); return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            let child = path + "/" + name
            var st = stat()
            if lstat(child, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { removeTree(child) } else { unlink(child) }
        }
        closedir(dir)
        rmdir(path)
    }

    public static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }
}
