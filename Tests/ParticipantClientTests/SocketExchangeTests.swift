import Foundation
@testable import ParticipantClient
import ParticipantTestSupport
import ParticipantWire
import Testing

/// The client's own HTTP/1.1 exchange on a Unix socket (``SocketExchange``), against servers that
/// misbehave: one that never answers, one that answers too much, one that hangs up half-way.
@Suite struct SocketExchangeTests {
    /// A Unix socket listening at `path`; `serve` gets each accepted connection's descriptor on a
    /// thread of its own (nil: connections wait in the backlog, never accepted).
    final class RawServer: @unchecked Sendable {
        let fd: Int32
        init(path: String, serve: (@Sendable (Int32) -> Void)?) throws {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { bytes in
                for (index, byte) in path.utf8.enumerated() { bytes[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
            if let serve {
                let fd = fd
                Thread.detachNewThread {
                    while true {
                        let connection = accept(fd, nil, nil)
                        if connection < 0 { return }
                        serve(connection)
                    }
                }
            }
        }
        deinit { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

        /// Reads the request (up to its blank line), then writes `answer` and closes.
        static func answering(_ answer: String) -> @Sendable (Int32) -> Void {
            { connection in
                var request: [UInt8] = []
                var byte: UInt8 = 0
                while read(connection, &byte, 1) == 1 {
                    request.append(byte)
                    if request.suffix(4) == Array("\r\n\r\n".utf8) { break }
                }
                let bytes = Array(answer.utf8)
                _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                close(connection)
            }
        }
    }

    @Test("No socket: unreachable at once, saying so")
    func noSocket() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let client = DaemonClient(socketPath: directory.path + "/none.sock", timeout: .seconds(5))
        let error = await #expect(throws: DaemonClientError.self) { try await client.health() }
        #expect("\(error!)".contains("no socket at this path (is participantd running?)"), "\(error!)")
    }

    @Test("A server that never answers: the call ends at its timeout, saying so")
    func neverAnswers() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try RawServer(path: directory.path + "/silent.sock", serve: nil)
        let client = DaemonClient(socketPath: directory.path + "/silent.sock", timeout: .milliseconds(300))
        let error = await #expect(throws: DaemonClientError.self) { try await client.health() }
        #expect("\(error!)".contains("no whole answer within"), "\(error!)")
        withExtendedLifetime(server) {}
    }

    @Test("An answer beyond the limit, or cut short, is an error, not a truncated answer")
    func tooLargeOrCut() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let large = try RawServer(path: directory.path + "/large.sock", serve: RawServer.answering(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2000\r\n\r\n" + String(repeating: "x", count: 2000)
        ))
        do {
            _ = try await SocketExchange.exchange(
                socketPath: directory.path + "/large.sock", method: .GET, path: "/", body: nil, timeout: .seconds(30), bodyLimit: 1000
            )
            Issue.record("an answer of 2000 bytes was taken with a limit of 1000")
        } catch {
            #expect("\(error)" == "the answer is larger than 1000 bytes")
        }
        let cut = try RawServer(path: directory.path + "/cut.sock", serve: RawServer.answering(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\""
        ))
        let client = DaemonClient(socketPath: directory.path + "/cut.sock", timeout: .seconds(30))
        await #expect(throws: DaemonClientError.self) { try await client.health() }
        withExtendedLifetime((large, cut)) {}
    }

    @Test("An answer given before the request was read whole (a body too large) is the answer, not a write error")
    func earlyAnswer() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let answer = #"{"code":"PayloadTooLarge","message":"0123456789ab"}"#
        let server = try RawServer(path: directory.path + "/early.sock", serve: RawServer.answering(
            "HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\nContent-Length: \(answer.utf8.count)\r\n\r\n" + answer
        ))
        let client = DaemonClient(socketPath: directory.path + "/early.sock", timeout: .seconds(5))
        let submissions = (0..<2_000).map { EventSubmission(contentType: "t", content: String(repeating: "x", count: 500), clientToken: "\($0)", connectionToken: "c") }
        let error = await #expect(throws: DaemonClientError.self) { try await client.submitBatch(submissions) }
        #expect(error == .api(status: 413, ErrorBody(code: "PayloadTooLarge", message: "0123456789ab")), "\(String(describing: error))")
        withExtendedLifetime(server) {}
    }

    @Test("A ClientToken in a path: unreserved characters as they are, every other UTF-8 byte percent-encoded")
    func pathSegments() {
        #expect(DaemonClient.pathSegment("abc-XYZ_0.9~") == "abc-XYZ_0.9~")
        #expect(DaemonClient.pathSegment("a/b c?d#e%") == "a%2Fb%20c%3Fd%23e%25")
        #expect(DaemonClient.pathSegment("é") == "%C3%A9")
    }
}
