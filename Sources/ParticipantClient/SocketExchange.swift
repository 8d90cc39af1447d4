import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One HTTP/1.1 request and its answer on a connection of its own to a Unix socket: what
/// ``DaemonClient`` needs of an HTTP client, on SwiftNIO's HTTP/1.1 codec.
///
/// Written here rather than taken from AsyncHTTPClient, which did this job before: a local socket
/// needs no pool, TLS, HTTP/2, proxies or redirects, and AsyncHTTPClient depends on
/// swift-configuration, whose YAML trait (the daemon's) links Yams, which links all of Foundation
/// and ICU's data: `participantctl` was 75 MB with it (BENCHMARKS.md, "Size and memory").
/// A connection a request costs about 30 µs on a Unix socket.
enum SocketExchange {
    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        /// The body, unless `stream` took it.
        var body: ByteBuffer
        /// Bytes of the body `stream` took.
        var streamed: Int64 = 0
    }

    enum Failure: Error, CustomStringConvertible {
        case connect(any Error)
        case timedOut(TimeAmount)
        case tooLarge(Int)
        case incomplete
        case io(any Error)

        var description: String {
            switch self {
            case .connect(let error): "\(error)"
            case .timedOut(let amount): "no whole answer within \(amount.nanoseconds / 1_000_000_000) s"
            case .tooLarge(let limit): "the answer is larger than \(limit) bytes"
            case .incomplete: "the connection closed before the answer was whole"
            case .io(let error): "\(error)"
            }
        }
    }

    static let connectTimeout = TimeAmount.seconds(2)

    /// Sends the request and reads its answer within `timeout`. A 200's body goes to `stream`
    /// when given (a backup); any other body is collected, up to `bodyLimit` bytes.
    static func exchange(
        socketPath: String, method: HTTPMethod, path: String, body: [UInt8]?, timeout: TimeAmount, bodyLimit: Int,
        stream: ((ByteBuffer) throws -> Void)? = nil
    ) async throws(Failure) -> Answer {
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(connectTimeout)
                .connect(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw .connect(error)
        }
        // The deadline closes the connection, which ends the exchange below with an error.
        let fired = DeadlineFlag()
        let deadline = channel.channel.eventLoop.scheduleTask(in: timeout) {
            fired.value.store(true, ordering: .relaxed)
            channel.channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        do {
            return try await channel.executeThenClose { inbound, outbound in
                var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
                head.headers.add(name: "Host", value: "localhost")
                head.headers.add(name: "Connection", value: "close")
                if let body {
                    head.headers.add(name: "Content-Type", value: "application/json")
                    head.headers.add(name: "Content-Length", value: "\(body.count)")
                }
                // The daemon may answer before it has read the whole request (a body too large)
                // and close: its answer is read all the same, and a failed write is the error only
                // when no answer came.
                var writeError: (any Error)?
                do {
                    try await outbound.write(.head(head))
                    if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                    try await outbound.write(.end(nil))
                } catch {
                    writeError = error
                }
                var answer: Answer?
                for try await part in inbound {
                    switch part {
                    case .head(let response):
                        answer = Answer(status: Int(response.status.code), headers: response.headers, body: ByteBuffer())
                    case .body(var chunk):
                        guard var current = answer else { throw Failure.incomplete }
                        if current.status == 200, let stream {
                            try stream(chunk)
                            current.streamed += Int64(chunk.readableBytes)
                        } else {
                            guard current.body.readableBytes + chunk.readableBytes <= bodyLimit else { throw Failure.tooLarge(bodyLimit) }
                            current.body.writeBuffer(&chunk)
                        }
                        answer = current
                    case .end:
                        guard let answer else { throw writeError ?? Failure.incomplete }
                        return answer
                    }
                }
                throw writeError ?? Failure.incomplete
            }
        } catch let failure as Failure {
            throw fired.value.load(ordering: .relaxed) ? .timedOut(timeout) : failure
        } catch {
            throw fired.value.load(ordering: .relaxed) ? .timedOut(timeout) : .io(error)
        }
    }

    /// Whether the deadline ran (and closed the connection).
    private final class DeadlineFlag: Sendable {
        let value = Atomic<Bool>(false)
    }
}
