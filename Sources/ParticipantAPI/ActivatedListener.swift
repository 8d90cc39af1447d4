import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ParticipantOutbox
import ParticipantWire
import ServiceLifecycle

/// Serves the socket API on a listening socket systemd passed (socket activation), with the same
/// router and connection limits as the socket the daemon binds itself.
///
/// Written by hand because Hummingbird 2.28's `Application` can only bind an address, not adopt
/// a descriptor; NIO's `ServerBootstrap.withBoundSocket` can. The per-request part follows
/// Hummingbird's own `Application.run`: a request context per request, errors Hummingbird does not
/// map become an empty 500, the `Server` header, and the `Date` header (``HTTPDate``: Hummingbird's
/// date cache is not public). Graceful shutdown stops accepting and lets open
/// connections finish their request, as Hummingbird's server does (NIOExtras' quiescing helper).
public final class ActivatedListener: Service, Sendable {
    private let descriptor: CInt
    private let responder: RouterResponder<DaemonRequestContext>
    private let limits: APIConfiguration
    private let onRunning: @Sendable () -> Void
    private let logger: Logger
    private let hotRoutes: HotRoutes?

    public init(
        descriptor: CInt, router: Router<DaemonRequestContext>, hotRoutes: HotRoutes? = nil, limits: APIConfiguration,
        onRunning: @escaping @Sendable () -> Void, logger: Logger
    ) {
        self.descriptor = descriptor
        self.hotRoutes = hotRoutes
        self.responder = router.buildResponder()
        self.limits = limits
        self.onRunning = onRunning
        self.logger = logger
    }

    public func run() async throws {
        let responder = self.responder
        let logger = self.logger
        let childChannel = GuardedHTTP1Channel(
            responder: { request, responseWriter, channel in
                let context = DaemonRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: logger))
                var response: Response
                do {
                    response = try await responder.respond(to: request, context: context)
                } catch let error as HTTPParserError {
                    throw error
                } catch {
                    logger.debug("Unrecognised error", metadata: ["error.type": "\(error)"])
                    response = Response(status: .internalServerError, body: .init())
                }
                response.headers[.date] = HTTPDate.now()
                response.headers[.server] = DaemonAPI.serverName
                // (Hummingbird maps a parser error here to an error of its own, which is not public:
                // either way the connection is closed without a second response.)
                try await responseWriter.write(response: response.head, body: response.body)
            },
            limits: limits,
            connections: ConnectionCount(),
            hotRoutes: hotRoutes
        )

        let (connections, continuation) = AsyncStream.makeStream(of: GuardedHTTP1Channel.Value.self)
        let group = MultiThreadedEventLoopGroup.singleton
        let quiescing = ServerQuiescingHelper(group: group)
        let serverChannel = try await ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                childChannel.setup(channel: channel, logger: logger).map { continuation.yield($0) }
            }
            .withBoundSocket(descriptor)
            .get()
        serverChannel.closeFuture.whenComplete { _ in continuation.finish() }
        onRunning()

        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await connection in connections {
                    group.addTask { await childChannel.handle(value: connection, logger: logger) }
                }
            }
        } onGracefulShutdown: {
            quiescing.initiateShutdown(promise: nil)
        }
    }
}
