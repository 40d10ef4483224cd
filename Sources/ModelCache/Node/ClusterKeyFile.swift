import Foundation
import ModelCacheCore

/// Reads `--cluster-key-file` (protocol §14): 16–4096 bytes, used as they are (a trailing newline is part of the key,
/// so copy the same file to every node), in a regular file that no group or other user may read or write.
public enum ClusterKeyFile {
    public static func load(_ path: String) throws(ModelCacheError) -> ClusterKey {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw .invalidArgument("--cluster-key-file \(path) cannot be read (\(reason)): give a file this user can read")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & 0o170000 == 0o100000 else {
            throw .invalidArgument("--cluster-key-file \(path) is not a regular file: give a file of 16 to 4096 bytes")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw .invalidArgument("--cluster-key-file \(path) is open to other users (mode \(String(st.st_mode & 0o777, radix: 8))): run chmod 600 \(path)")
        }
        let size = Int(st.st_size)
        guard (ClusterKey.minBytes...ClusterKey.maxBytes).contains(size) else {
            throw .invalidArgument("--cluster-key-file \(path) holds \(size) bytes: a key is 16 to 4096 bytes (e.g. head -c 32 /dev/urandom > \(path))")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        guard n == size, let key = ClusterKey(bytes: bytes) else {
            throw .invalidArgument("--cluster-key-file \(path) could not be read whole: check the file and retry")
        }
        return key
    }
}
