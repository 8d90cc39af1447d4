import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ParticipantInput
import ParticipantOutbox
import ParticipantWire
import ServiceLifecycle
import Synchronization

/// `POST /v1/events` on a plain SwiftNIO HTTP/1.1 pipeline, with the outbox taken out, for
/// benchmarks only (`participant-load baseline --server nio`): the same decoding, validation and
/// answer as ``BaselineAPI``, without Hummingbird's router, middleware, request body sequence and
/// task per request, so the two baselines' difference is what Hummingbird costs a request
/// (BENCHMARKS.md, "Issue 31"). It is not the daemon's server: it has none of its guards (peer
/// identity, access rules, body budget, slow-client timeouts) and answers only this route.
enum PlainNIOBaseline {
    static func run(socketPath: String, maxBodyBytes: Int, logger: Logger) async throws {
        try FileManager.default.createDirectory(atPath: (socketPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        unlink(socketPath)
        let server = Server(socketPath: socketPath, maxBodyBytes: maxBodyBytes, logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    /// Serves until the service group shuts down gracefully.
    struct Server: Service {
        let socketPath: String
        let maxBodyBytes: Int
        let logger: Logger

        func run() async throws {
            let sequence = SequenceNumbers()
            let maxBodyBytes = maxBodyBytes
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(SubmitHandler(maxBodyBytes: maxBodyBytes, sequence: sequence))
                    }
                }
                .bind(unixDomainSocketPath: socketPath)
                .get()
            logger.notice("Plain SwiftNIO baseline server ready (nothing is stored)", metadata: ["socket.path": "\(socketPath)"])
            try? await gracefulShutdown()
            try await channel.close()
        }
    }

    final class SequenceNumbers: Sendable {
        private let value = Atomic<Int64>(0)
        func next() -> Int64 { value.add(1, ordering: .relaxed).newValue }
    }

    final class SubmitHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let maxBodyBytes: Int
        let sequence: SequenceNumbers
        let deadlines = EventDeadlines()
        var body: ByteBuffer?
        var refusal: (HTTPResponseStatus, String)?
        var keepAlive = true

        init(maxBodyBytes: Int, sequence: SequenceNumbers) {
            self.maxBodyBytes = maxBodyBytes
            self.sequence = sequence
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                keepAlive = head.isKeepAlive
                body = context.channel.allocator.buffer(capacity: 0)
                refusal = nil
                if head.method != .POST || head.uri != "/v1/events" {
                    refusal = (.notFound, "only POST /v1/events is served here")
                } else {
                    do {
                        try RequestDecoding.checkMediaType(head.headers.first(name: "content-type"))
                    } catch {
                        refusal = (.unsupportedMediaType, error.description)
                    }
                }
            case .body(var part):
                if refusal == nil, (body?.readableBytes ?? 0) + part.readableBytes > maxBodyBytes {
                    refusal = (.payloadTooLarge, "the request body is larger than \(maxBodyBytes) bytes")
                }
                if refusal == nil { body?.writeBuffer(&part) }
            case .end:
                let (status, answer) = respond()
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "application/json")
                headers.add(name: "content-length", value: String(answer.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer)))), promise: nil)
                let keepAlive = keepAlive
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                    if !keepAlive { context.close(promise: nil) }
                }
                body = nil
            }
        }

        private func respond() -> (HTTPResponseStatus, [UInt8]) {
            if let (status, message) = refusal {
                return (status, Array("{\"error\":\(String(reflecting: message))}\n".utf8))
            }
            let event: ValidatedEvent
            do {
                event = try RequestDecoding.daemonRequest(body: Data(body?.readableBytesView ?? ByteBuffer().readableBytesView))
            } catch {
                return (.badRequest, Array("{\"error\":\(String(reflecting: error.description))}\n".utf8))
            }
            let now = Date()
            let stored = StoredEvent(
                accepted: event, seq: sequence.next(),
                clientToken: event.clientToken ?? UUID().uuidString.lowercased(),
                connectionHash: ConnectionHash.of(event.connectionToken, instance: event.instance), at: now,
                deadline: now.addingTimeInterval(deadlines.deadline(for: event.contentType).timeInterval),
                supersededBy: nil
            )
            return (.accepted, AnswerWriter.jsonLine(SubmitResponse(event: stored.record, created: true, warnings: event.warnings)))
        }
    }
}
