import Foundation
import Testing
@testable import ModelCache
import ModelCacheCore

/// `PosixFile`'s early write-back (issue 12: the commit's fsync should find the pages already written) must be a
/// harmless hint: any range, any kind of descriptor, and the bytes stay what was written.
@Suite struct PosixFileTests {
    @Test func startWriteBackTakesAnyRangeAndLeavesTheBytesAlone() throws {
        let path = NSTemporaryDirectory() + "modelcache-posixfile-" + UUID().uuidString
        defer { unlink(path) }
        let bytes = testBytes(300_000)
        let f = try PosixFile(path: path, flags: O_RDWR | O_CREAT | O_EXCL)
        try f.preallocate(Int64(bytes.count))
        try bytes.withUnsafeBytes { try f.write($0, at: 0) }
        for range: Range<Int64> in [0..<100_000, 100_000..<300_000, 0..<0, -5..<10, 250_000..<9_000_000, Int64.max - 1..<Int64.max] {
            f.startWriteBack(range)
        }
        try f.sync()
        var back = [UInt8](repeating: 0, count: bytes.count)
        let n = try back.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
        #expect(n == bytes.count)
        #expect(back == bytes)
    }

    @Test func startWriteBackOnAPipeIsIgnored() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let dup1 = dup(fds[1])
        let f = try PosixFile(path: "/proc/self/fd/\(dup1)", flags: O_WRONLY)
        close(dup1)
        f.startWriteBack(0..<4096)  // ESPIPE: nothing to start, nothing thrown
        var one: UInt8 = 42
        #expect(write(fds[1], &one, 1) == 1)  // the pipe still works
        var got: UInt8 = 0
        #expect(read(fds[0], &got, 1) == 1)
        #expect(got == 42)
    }
}
