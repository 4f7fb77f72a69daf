import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Raw TCP clients to 127.0.0.1, for tests that send half requests, hold connections open, or send what no HTTP
/// client would. Every blocking call runs on a dispatch thread (``offThread(_:)``), never on the cooperative pool
/// that the in-process server's handlers need, and every wait is bounded.
struct SocketError: Error, CustomStringConvertible {
    var description: String
    init(_ what: String) { description = "\(what): \(String(cString: strerror(errno)))" }
}

/// Runs blocking work on a dispatch thread.
func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// One blocking client socket. Not thread-safe: use it from one thread at a time.
final class RawSocket: @unchecked Sendable {
    let fd: Int32
    /// When the connection was made (`DispatchTime` nanoseconds).
    let openedAt: UInt64
    private var open = true

    /// Connects to 127.0.0.1:`port`.
    init(port: Int) throws {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw SocketError("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let error = SocketError("connect")
            Glibc.close(descriptor)
            throw error
        }
        fd = descriptor
        openedAt = DispatchTime.now().uptimeNanoseconds
    }

    deinit { close() }

    /// Sends all of `text`.
    func send(_ text: String) throws {
        try send(Data(text.utf8))
    }

    /// Sends all of `data`.
    func send(_ data: Data) throws {
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = Glibc.send(fd, raw.baseAddress!.advanced(by: offset), raw.count - offset, Int32(MSG_NOSIGNAL))
                guard sent > 0 else { throw SocketError("send") }
                offset += sent
            }
        }
    }

    /// Reads until the server closes the connection or `timeout` seconds pass.
    /// - Returns: what arrived, and whether the server closed the connection (false: the time ran out first).
    func readUntilClosed(timeout: Double) -> (data: Data, closed: Bool) {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { return (data, false) }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, (deadline - now) / 1_000_000)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 {
                data.append(contentsOf: buffer[0..<count])
            } else {
                return (data, true)  // 0: orderly close; < 0: reset, also closed
            }
        }
    }

    /// Reads one HTTP response (head, then a `Content-Length` body), waiting at most `timeout` seconds.
    func readResponse(timeout: Double) throws -> RawResponse {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let response = RawResponse(parsing: data) { return response }
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { throw SocketError("no whole response in \(timeout) s (got \(data.count) bytes)") }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, (deadline - now) / 1_000_000)))
            guard ready > 0 else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { throw SocketError("closed after \(data.count) bytes, before a whole response") }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// Whether the server has closed the connection already (does not wait; consumes nothing but the end).
    func isClosedByPeer() -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) <= 0
    }

    func close() {
        if open {
            open = false
            Glibc.close(fd)
        }
    }
}

/// An HTTP/1.1 response read off a raw socket.
struct RawResponse {
    var status: Int
    /// Header fields, names lowercased.
    var headers: [String: String]
    var body: Data

    /// The first whole response in `data` (a head and its `Content-Length` body), or nil if it is not all there.
    init?(parsing data: Data) {
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        guard let statusLine = head.first, statusLine.hasPrefix("HTTP/1.1 "),
              let status = Int(statusLine.dropFirst(9).prefix(3)) else { return nil }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = headers["content-length"].flatMap { Int($0) } ?? 0
        let body = data[end.upperBound...]
        guard body.count >= length else { return nil }
        self.status = status
        self.headers = headers
        self.body = Data(body.prefix(length))
    }
}

/// Waits until the server has closed every socket of `sockets` (reading and dropping what they receive), or
/// `timeout` seconds pass. Returns, for each socket, how long its connection lived (seconds from connecting to the
/// server's close), or nil if the server had not closed it in time.
func waitUntilClosed(_ sockets: [RawSocket], timeout: Double) -> [Double?] {
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
    var lifetimes = [Double?](repeating: nil, count: sockets.count)
    var pending = sockets.enumerated().map { (index: $0.offset, poller: pollfd(fd: $0.element.fd, events: Int16(POLLIN), revents: 0)) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    while !pending.isEmpty {
        let now = DispatchTime.now().uptimeNanoseconds
        guard now < deadline else { break }
        var pollers = pending.map(\.poller)
        let ready = poll(&pollers, nfds_t(pollers.count), Int32(max(1, (deadline - now) / 1_000_000)))
        if ready < 0 && errno == EINTR { continue }
        guard ready > 0 else { continue }
        let at = DispatchTime.now().uptimeNanoseconds
        var still: [(index: Int, poller: pollfd)] = []
        still.reserveCapacity(pending.count)
        for (entry, polled) in zip(pending, pollers) {
            if polled.revents == 0 {
                still.append(entry)
                continue
            }
            let count = recv(polled.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count > 0 || (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                still.append(entry)  // an answer; the close follows
            } else {
                lifetimes[entry.index] = Double(at - sockets[entry.index].openedAt) / 1e9
            }
        }
        pending = still
    }
    return lifetimes
}

// MARK: - Process resources

/// The number of open file descriptors of process `pid` (Linux: entries of /proc/PID/fd).
func openFileCount(pid: Int32) -> Int? {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
}

/// Raises this process's soft open-file limit to at least `wanted` if the hard limit allows; returns the soft limit
/// in force afterwards.
func raiseOpenFileLimit(to wanted: Int) -> Int {
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0 else { return 0 }
    if limit.rlim_cur < rlim_t(wanted) {
        var raised = limit
        raised.rlim_cur = min(rlim_t(wanted), limit.rlim_max)
        if setrlimit(resource, &raised) == 0 { limit = raised }
    }
    return Int(clamping: limit.rlim_cur)
}
