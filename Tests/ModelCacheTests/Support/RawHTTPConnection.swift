import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One TCP connection to a loopback port, spoken to in raw HTTP/1.1: every response's framing is read from the bytes
/// (a body that should not be there shows up as garbage where the next status line should be). Reads never block
/// a thread: the socket is non-blocking and an empty read sleeps the task (a blocking `recv` would hold one of Swift's
/// few cooperative threads, which the in-process node needs to answer; two of them stall every server of the test
/// process). Each read waits at most `readTimeout`, so a stalled response fails the test instead of hanging it. Nor
/// does it hog one: one read buffer for the connection, the head searched without copies, and a yield after every
/// read (a small receive window gives thousands of small reads per body).
final class RawHTTPConnection {
    struct Answer {
        var status: Int
        var headers: [String: String]  // names lowercased
        var body: [UInt8]
    }

    let fd: Int32
    let readTimeout: Duration
    private var pending: [UInt8] = []
    private var closed = false
    /// The socket's reads land here first (allocated once: a body read in small pieces must not zero a new buffer
    /// for each of them).
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)

    private init(fd: Int32, readTimeout: Duration) {
        self.fd = fd
        self.readTimeout = readTimeout
    }

    /// Connects to 127.0.0.1:`port` (nil when it cannot); `receiveWindow` shrinks the socket's receive buffer.
    static func open(port: Int, receiveWindow: Int32? = nil, readTimeout: Duration = .seconds(10)) -> RawHTTPConnection? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        if var window = receiveWindow {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &window, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0, fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0 else { Glibc.close(fd); return nil }
        return RawHTTPConnection(fd: fd, readTimeout: readTimeout)
    }

    deinit { close() }

    /// Closes the socket (once).
    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    /// Sends a request with no body; true when the kernel took all of it.
    func send(_ method: String, _ path: String, headers: [(String, String)] = []) -> Bool {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        text += "\r\n"
        return text.withCString { Glibc.send(fd, $0, strlen($0), 0) } == text.utf8.count
    }

    /// Reads up to `max` more bytes into the pending ones; false on end of stream, error or time-out.
    func receive(max: Int = 65_536) async -> Bool {
        let deadline = ContinuousClock.now + readTimeout
        let want = min(max, buffer.count)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, want, 0) }
            if n > 0 {
                pending.append(contentsOf: buffer[0..<n])
                await Task.yield()
                return true
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK, ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The next response: its head, then exactly Content-Length body bytes (none when `head` is set, as for HEAD).
    func answer(head: Bool = false) async -> Answer? {
        var found: Int? = nil
        var searched = 0  // every position before it was checked already
        for _ in 0..<1000 {
            while searched + 4 <= pending.count {
                if pending[searched] == 13, pending[searched + 1] == 10, pending[searched + 2] == 13, pending[searched + 3] == 10 {
                    found = searched
                    break
                }
                searched += 1
            }
            if found != nil { break }
            guard await receive() else { return nil }
        }
        guard let headEnd = found else { return nil }
        let lines = String(decoding: pending[0..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
        pending.removeFirst(headEnd + 4)
        let statusWords = lines.first?.split(separator: " ") ?? []
        guard statusWords.count >= 2, statusWords[0] == "HTTP/1.1", let status = Int(statusWords[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = head ? 0 : Int(headers["content-length"] ?? "0") ?? 0
        for _ in 0..<100_000 where pending.count < length {
            guard await receive(max: 1 << 20) else { return nil }
        }
        guard pending.count >= length else { return nil }
        let body = Array(pending[0..<length])
        pending.removeFirst(length)
        return Answer(status: status, headers: headers, body: body)
    }

    /// Bytes received beyond the responses read so far.
    var unread: Int { pending.count }
}
