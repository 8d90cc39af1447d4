import Foundation
import ParticipantTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A byte-level connection to a Unix socket, for requests no HTTP client would send: truncated,
/// malformed, trickled, oversized.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawConnectionError(operation: "socket", code: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: Array(path.utf8.prefix(buffer.count - 1)) + [0])
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw RawConnectionError(operation: "connect", code: code)
        }
    }

    deinit {
        Glibc.close(fd)
    }

    /// Sends bytes; `false` when the peer has closed (no SIGPIPE) or took nothing for
    /// ``sendLimit``.
    ///
    /// On a thread of its own, as ``read(timeout:until:)``: a send that fills the socket's buffer
    /// waits until the daemon reads, and the daemon under test runs on Swift's concurrency pool,
    /// in this process (two cores: two threads). Blocked there, two such sends at once would leave
    /// the daemon's handlers no thread to run on, and nothing else in this process either.
    @discardableResult
    func send(_ bytes: [UInt8]) async -> Bool {
        let fd = self.fd
        return await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: Self.blockingSend(fd: fd, bytes))
            }.start()
        }
    }

    @discardableResult
    func send(_ text: String) async -> Bool { await send(Array(text.utf8)) }

    /// How long one `send(2)` may wait for room in the socket's buffer (`SO_SNDTIMEO`).
    static let sendLimit: Duration = .seconds(30)

    private static func blockingSend(fd: Int32, _ bytes: [UInt8]) -> Bool {
        var limit = timeval(tv_sec: Int(sendLimit.components.seconds), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// Ends what this side sends (a half-close): the peer reads the end of its input.
    func shutdownWrite() {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Everything the peer sends until it closes the connection, or until `timeout` passes.
    /// The wait blocks a thread of its own, never one of the concurrency pool (the daemon under
    /// test runs on that pool, in this process).
    /// - Returns: the bytes, and whether the peer closed.
    func readUntilClosed(timeout: Duration) async -> (Data, closed: Bool) {
        await read(timeout: timeout) { _ in false }
    }

    /// Reads until `enough` holds for what arrived, the peer closes, or `timeout` passes.
    func read(timeout: Duration, until enough: @escaping @Sendable (Data) -> Bool) async -> (Data, closed: Bool) {
        let fd = self.fd
        return await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: Self.blockingRead(fd: fd, timeout: timeout, until: enough))
            }.start()
        }
    }

    private static func blockingRead(fd: Int32, timeout: Duration, until enough: (Data) -> Bool) -> (Data, closed: Bool) {
        var data = Data()
        let end = ContinuousClock.now.advanced(by: timeout)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while ContinuousClock.now < end {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let remaining = (end - ContinuousClock.now).components
            let waitMs = Int32(max(1, min(100, remaining.seconds * 1000 + remaining.attoseconds / 1_000_000_000_000_000)))
            guard poll(&descriptor, 1, waitMs) > 0 else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { return (data, true) }
            data.append(contentsOf: buffer[0..<count])
            if enough(data) { return (data, false) }
        }
        return (data, false)
    }

    /// Reads one HTTP response (the first one in what arrives before the close or `timeout`).
    func readResponse(timeout: Duration = .seconds(10)) async -> RawResponse? {
        RawResponse(await readUntilClosed(timeout: timeout).0)
    }

    /// Reads one whole response (its Content-Length body complete) without waiting for a close:
    /// for keep-alive connections. `closed`: the peer closed before the response was complete.
    func readKeepAliveResponse(timeout: Duration = .seconds(10)) async -> (RawResponse?, closed: Bool) {
        let (data, closed) = await read(timeout: timeout) { data in
            guard let response = RawResponse(data), let length = response.headers["content-length"].flatMap(Int.init) else { return false }
            return response.body.count >= length
        }
        return (RawResponse(data), closed)
    }
}

struct RawConnectionError: Error, CustomStringConvertible {
    let operation: String
    let code: Int32
    var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

/// An HTTP/1.1 response as bytes arrived: status, headers (lowercased names), body.
struct RawResponse {
    var status: Int
    var headers: [String: String]
    var body: Data

    init?(_ data: Data) {
        guard let separator = data.firstRange(of: Data("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: data[..<separator.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = head[0].split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        self.status = status
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        self.headers = headers
        var body = Data(data[separator.upperBound...])
        if let length = headers["content-length"].flatMap(Int.init), body.count > length {
            body = body.prefix(length)
        }
        self.body = body
    }

    /// Every complete response in `data`, in order (pipelined answers on one connection); each
    /// must have a `Content-Length`.
    static func all(_ data: Data) -> [RawResponse] {
        var responses: [RawResponse] = []
        var rest = Data(data)
        while let response = RawResponse(rest), let separator = rest.firstRange(of: Data("\r\n\r\n".utf8)),
              let length = response.headers["content-length"].flatMap(Int.init), rest.count - separator.upperBound >= length {
            responses.append(response)
            rest = Data(rest[(separator.upperBound + length)...])
        }
        return responses
    }

    /// The `code` of a JSON error body.
    var errorCode: String? {
        (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["code"] as? String
    }
}
