import Foundation
import Hummingbird
import Logging
import ParticipantAPI
import ParticipantInput
import ParticipantOutbox
import ParticipantWire
import ServiceLifecycle
import Synchronization

/// The socket API's `POST /v1/events` with the outbox taken out, for benchmarks only
/// (`participant-load baseline`).
///
/// The same HTTP server, connection guard, body reading, decoding, validation and answer as the
/// daemon's, but the event is not stored and nothing is sent: the daemon's rate measured against
/// this one is what durability costs. Not part of the daemon; nothing in `participantd` uses it.
public enum BaselineAPI {
    /// Serves `POST /v1/events` on `socketPath` until SIGTERM or SIGINT.
    public static func run(socketPath: String, configuration: APIConfiguration = APIConfiguration(), logger: Logger) async throws {
        try FileManager.default.createDirectory(atPath: (socketPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let sequence = Atomic<Int64>(0)
        let deadlines = EventDeadlines()
        let maxBodyBytes = configuration.maxBodyBytes
        let router = RouteTable([
            .init(.post, "/v1/events") { request, _ in
                let body = try await DaemonAPI.readBody(request, maxBodyBytes: maxBodyBytes)
                let event: ValidatedEvent
                do throws(RequestError) {
                    event = try RequestDecoding.daemonRequest(body: body)
                } catch {
                    throw APIError(error)
                }
                let now = Date()
                let stored = StoredEvent(
                    accepted: event, seq: sequence.add(1, ordering: .relaxed).newValue,
                    clientToken: event.clientToken ?? UUID().uuidString.lowercased(),
                    connectionHash: ConnectionHash.of(event.connectionToken, instance: event.instance), at: now,
                    deadline: now.addingTimeInterval(deadlines.deadline(for: event.contentType).timeInterval),
                    supersededBy: nil
                )
                return try DaemonAPI.json(SubmitResponse(event: stored.record, created: true, warnings: event.warnings), status: .accepted)
            },
        ]).router()
        let application = Application(
            router: router,
            server: .guardedHTTP1(configuration),
            configuration: ApplicationConfiguration(address: .unixDomainSocket(path: socketPath), serverName: "participantd-baseline"),
            onServerRunning: { _ in logger.notice("Baseline server ready (nothing is stored)", metadata: ["socket.path": "\(socketPath)"]) },
            logger: logger
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}
