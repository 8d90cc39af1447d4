import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// The daemon assembled: the outbox writer, the sender and the socket API, as one `ServiceGroup`.
///
/// Shutdown runs in reverse order: the socket stops accepting and finishes its requests, the
/// sender finishes the requests in flight and records them, the writer commits what is pending.
public enum Daemon {
    /// Opens the outbox, binds the socket and runs until SIGTERM or SIGINT (or cancellation).
    /// - Parameters:
    ///   - shutdownSignals: the signals that start a graceful shutdown.
    ///   - logger: where every part logs.
    public static func run(
        configuration: DaemonConfiguration,
        shutdownSignals: [UnixSignal] = [.sigterm, .sigint],
        logger: Logger
    ) async throws {
        let upstream = try configuration.upstream
        try await checkSocketIsFree(configuration.socketPath)
        let outbox = try Outbox.open(
            path: configuration.databasePath, deadlines: configuration.deadlines, limits: configuration.limits,
            coalescing: configuration.coalescing, logger: logger
        )
        let httpClient = HTTPParticipantService.makeHTTPClient(upstream)
        let sender = EventSender(
            outbox: outbox,
            service: HTTPParticipantService(configuration: upstream, client: httpClient),
            configuration: configuration.sender,
            shutdownTimeout: configuration.shutdownTimeout,
            logger: logger
        )
        let api = SocketAPI(
            outbox: outbox, maxBodyBytes: configuration.maxBodyBytes,
            onAccepted: { sender.wake() }, healthProblems: { sender.healthProblems }
        )

        try prepareSocketDirectory(for: configuration.socketPath)
        let socketPath = configuration.socketPath
        let socketMode = configuration.socketMode
        let application = Application(
            router: api.router(),
            configuration: ApplicationConfiguration(address: .unixDomainSocket(path: socketPath), serverName: "participantd"),
            onServerRunning: { _ in
                if chmod(socketPath, mode_t(socketMode)) != 0 {
                    logger.error("Cannot set the socket's mode", metadata: ["socket.path": "\(socketPath)", "error": "\(String(cString: strerror(errno)))"])
                }
                logger.notice("participantd ready", metadata: [
                    "socket.path": "\(socketPath)",
                    "socket.mode": "\(String(socketMode, radix: 8))",
                    "database.path": "\(configuration.databasePath)",
                    "upstream.endpoint": "\(upstream.endpoint)",
                ])
            },
            logger: logger
        )

        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: outbox.writer),
                    .init(service: OutboxJanitor(outbox: outbox, logger: logger)),
                    .init(service: sender),
                    .init(service: application),
                ],
                gracefulShutdownSignals: shutdownSignals,
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
        try await httpClient.shutdown()
        logger.notice("participantd stopped")
    }

    /// Refuses to start when something answers on the socket already: binding would unlink a live
    /// daemon's socket and leave it running unreachable. A stale file left by a crash is fine.
    static func checkSocketIsFree(_ socketPath: String) async throws {
        guard FileManager.default.fileExists(atPath: socketPath) else { return }
        do {
            _ = try await DaemonClient(socketPath: socketPath, timeout: .seconds(2)).health()
        } catch .unreachable {
            return
        } catch {
            // Something answered, if not like participantd: the socket is in use all the same.
        }
        throw ConfigurationError(key: "socket", rule: "another process is already listening on \(socketPath)")
    }

    static func prepareSocketDirectory(for socketPath: String) throws {
        let directory = (socketPath as NSString).deletingLastPathComponent
        guard !directory.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ConfigurationError(key: "socket", rule: "cannot create the directory \(directory): \(error.localizedDescription)")
        }
    }
}
