#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import ModelCacheCore

/// Puts a blob where the user asked (`fetch -o`): by default their own copy (a reflink where the file system has
/// them, so no bytes are duplicated, else a byte copy), so writing to it never changes the cache; with `link`, a
/// hard link to the read-only blob itself (a copy across file systems). Written under a temporary name next to the
/// destination and renamed over it, so a failure (a full disk) leaves nothing behind.
public enum FilePlacement {
    public enum Method: String, Sendable { case reflink, copy, link }

    /// `FICLONE` (linux/fs.h): `_IOW(0x94, 9, int)`.
    static let ficlone: UInt = 0x4004_9409

    @discardableResult
    public static func place(blob: String, at dest: String, link wantLink: Bool) throws(ModelCacheError) -> Method {
        let dir = PosixFile.parent(dest)
        try PosixFile.makeDirectories(dir)
        let name = String(dest.split(separator: "/").last ?? "file")
        let temp = dir + "/." + name + ".modelcache-" + UUID().uuidString + ".tmp"
        var method = Method.copy
        do {
            if wantLink, Glibc.link(blob, temp) == 0 {
                method = .link
                if sameFile(blob, dest) { unlink(temp); return .link }  // rename(2) of two links to one file does nothing
            } else {
                method = try copy(from: blob, to: temp)
            }
            try PosixFile.rename(temp, to: dest)
        } catch {
            unlink(temp)
            throw error
        }
        return method
    }

    static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev
    }

    /// A new file at `to` (which must not exist) with the bytes of `from`: cloned when the file system can, else copied.
    static func copy(from: String, to: String) throws(ModelCacheError) -> Method {
        let src = try PosixFile(path: from, flags: O_RDONLY)
        let dst = try PosixFile(path: to, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        let size = try src.size()
        if ioctl(dst.fd, ficlone, src.fd) == 0, try dst.size() == size { return .reflink }
        ftruncate(dst.fd, 0)
        try copyBytes(from: src, to: dst, size: size)
        return .copy
    }

    /// Preallocates `dst` (a full disk fails first) and writes `src`'s first `size` bytes into it.
    static func copyBytes(from src: PosixFile, to dst: PosixFile, size: Int64) throws(ModelCacheError) {
        try dst.preallocate(size)
        var offset: Int64 = 0
        var failure: ModelCacheError? = nil
        try FileHasher.forEachBlock(of: src, range: 0..<size) { block in
            guard failure == nil else { return }
            do throws(ModelCacheError) { try dst.write(block, at: offset) } catch { failure = error }
            offset += Int64(block.count)
        }
        if let failure { throw failure }
        guard try dst.size() == size else { throw ModelCacheError.diskFull(path: dst.path, needed: size) }
    }
}
