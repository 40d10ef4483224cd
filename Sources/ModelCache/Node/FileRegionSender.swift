import Foundation
import Hummingbird
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Sends a file's bytes as a response body with sendfile(2), as nginx does: the body writer passes an empty marker
/// buffer, and the connection's `SendfileHandler` (below Hummingbird's HTTP codec) writes a `FileRegion` of the file
/// in its place. A marker is recognised by the address of its storage, which this sender keeps alive while the marker
/// is pending: no byte of any body (a stored file's, another route's) can pose as one, and a marker that no handler
/// replaced is empty, so it adds nothing to a body.
final class FileRegionSender: Sendable {
    struct Pending: Sendable {
        var marker: ByteBuffer  // held so that no other buffer gets its storage's address while it is pending
        var region: FileRegion
        var file: OpenFile
        /// Completed when the socket has taken the whole region (or failed with the connection).
        var written: EventLoopPromise<Void>
    }

    private struct State {
        var pending: [UInt: Pending] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    /// The most bytes one region holds: each region costs one marker through the async writer and one wait for the
    /// socket; `send` keeps two queued, so a connection holds at most 8 MiB of file regions.
    static let regionSize: Int64 = 4 << 20

    /// Writes `range` of `file` through `writer` as regions of at most `regionSize` bytes; `before` runs before each
    /// region (the upload rate limit waits there), `after` once it is queued (the served counts). At most `ahead`
    /// regions are queued beyond what the socket has taken (the async writer's own back pressure comes too late for
    /// markers, which are empty), and it returns once the socket has taken the last one, so an upload slot is held
    /// for the whole transfer. The file must still hold the range (checked before each region: sendfile(2) on a
    /// file that shrank would send nothing).
    func send(_ file: OpenFile, _ range: Range<Int64>, to writer: inout any ResponseBodyWriter, regionSize: Int64 = FileRegionSender.regionSize,
              ahead: Int = 2, before: (Int) async throws -> Void = { _ in }, after: (Int) -> Void = { _ in }) async throws {
        var queued: [EventLoopFuture<Void>] = []
        var offset = range.lowerBound
        while offset < range.upperBound {
            if queued.count >= max(1, ahead) { try await queued.removeFirst().get() }
            let end = min(range.upperBound, offset + max(1, regionSize))
            let n = Int(end - offset)
            try await before(n)
            try file.requireSize(atLeast: end)
            let marker = ByteBufferAllocator().buffer(capacity: 1)
            let key = FileRegionSender.key(marker)
            let written = eventLoop.makePromise(of: Void.self)
            let pending = Pending(marker: marker, region: FileRegion(fileHandle: file.handle, readerIndex: Int(offset), endIndex: Int(end)),
                                  file: file, written: written)
            let registered = state.withLock { s in
                guard !s.closed else { return false }
                s.pending[key] = pending
                return true
            }
            guard registered else {
                written.fail(ChannelError.ioOnClosedChannel)
                throw ChannelError.ioOnClosedChannel
            }
            do {
                try await writer.write(marker)
            } catch {
                state.withLock { $0.pending.removeValue(forKey: key) }?.written.fail(error)
                throw error
            }
            queued.append(written.futureResult)
            offset = end
            after(n)
        }
        for f in queued { try await f.get() }
    }

    /// The region a marker stands for, removed from the pending ones (nil: not one of this sender's markers).
    func take(_ buffer: ByteBuffer) -> Pending? {
        guard buffer.readableBytes == 0 else { return nil }
        let key = FileRegionSender.key(buffer)
        return state.withLock { $0.pending.removeValue(forKey: key) }
    }

    /// The connection is gone: markers not yet seen never will be; their files are let go.
    func close() {
        let dropped = state.withLock { s in
            s.closed = true
            defer { s.pending = [:] }
            return s.pending
        }
        // Failed (and the files let go) outside the lock: the last reference to a file closes it.
        for p in dropped.values { p.written.fail(ChannelError.ioOnClosedChannel) }
    }

    var pendingCount: Int { state.withLock { $0.pending.count } }

    private static func key(_ buffer: ByteBuffer) -> UInt {
        buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
    }
}

/// The connection a response goes out on, as the routes that send files are given it (from the request context's
/// channel): its `FileRegionSender` is the one of the `SendfileHandler` in its pipeline, looked up when the body
/// starts. Without a channel (a context that has none, such as the control socket's) or a handler, a body is read
/// and copied.
public struct ServingConnection: Sendable {
    public let channel: (any Channel)?

    public init(channel: (any Channel)?) { self.channel = channel }

    public static let unknown = ServingConnection(channel: nil)

    /// The sender of the connection's `SendfileHandler`; nil when it has none or is already closed (one hop to its
    /// event loop).
    func sender() async -> FileRegionSender? {
        guard let channel else { return nil }
        return try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: SendfileHandler.self).sender
        }.get()
    }
}

/// A request context that knows the connection its request came on (`NodeRequestContext`).
protocol ChannelRequestContext: RequestContext {
    var channel: any Channel { get }
}

extension RequestContext {
    /// This request's connection, for a response body that sends a file (unknown for a context without a channel).
    var servingConnection: ServingConnection {
        ServingConnection(channel: (self as? any ChannelRequestContext)?.channel)
    }
}

/// A file opened once for a whole transfer (the path is not looked at again: a blob evicted or replaced meanwhile is
/// still read from the inode that was opened). Closed when the last reference goes: the transfer's, or that of a
/// region still being sent.
final class OpenFile: Sendable {
    let handle: NIOFileHandle
    let fd: CInt
    let path: String

    /// Opens a regular file for reading.
    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw OpenFile.Failure(detail: "cannot open \(path): \(String(cString: strerror(code)))", missing: code == ENOENT)
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw OpenFile.Failure(detail: "\(path) is not a regular file")
        }
        self.fd = fd
        self.path = path
        self.handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
    }

    deinit { try? handle.close() }

    /// Throws unless the file still has `end` bytes.
    func requireSize(atLeast end: Int64) throws {
        var st = stat()
        guard fstat(fd, &st) == 0, Int64(st.st_size) >= end else {
            throw OpenFile.Failure(detail: "\(path) shrank below \(end) bytes while it was being sent; the transfer is cut")
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var detail: String
        /// The file is not there (ENOENT).
        var missing = false
        var description: String { detail }
    }
}
