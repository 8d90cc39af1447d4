import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import ParticipantAPI
import ParticipantDelivery
import ParticipantFleet
import ParticipantOutbox
import ParticipantWire
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The daemon assembled: the outbox writer, the sender and the socket API, as one `ServiceGroup`.
///
/// Shutdown runs in reverse order: the socket stops accepting and finishes its requests, the
/// sender finishes the requests in flight and records them, the writer commits what is pending.
public enum Daemon {
    /// Opens the outbox, binds the socket and runs until SIGTERM or SIGINT (or cancellation).
    /// - Parameters:
    ///   - shutdownSignals: the signals that start a graceful shutdown.
    ///   - environment: where systemd's `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `LISTEN_FDS` are read.
    ///   - logSettings: the level and format `logger` follows, changed by a reload.
    ///   - reload: reads the configuration again (SIGHUP); `nil`: SIGHUP is not handled.
    ///   - logger: where every part logs.
    public static func run(
        configuration: DaemonConfiguration,
        shutdownSignals: [UnixSignal] = [.sigterm, .sigint],
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logSettings: LogSettings? = nil,
        reload: (@Sendable () async throws -> DaemonConfiguration)? = nil,
        logger: Logger
    ) async throws {
        let instances = try configuration.allInstances.map { instance in
            (instance, try configuration.upstream(for: instance, environment: environment))
        }
        let upstream = instances[0].1
        let fleetAddress = try configuration.fleet.address()
        let access = try configuration.access.resolved()
        // Everything that can refuse to start comes before anything that needs stopping.
        let notifier = SystemdNotifier(environment: environment)
        let activated = try SocketActivation.listeningSocket(environment: environment)
        let socketPath = activated.map { SocketActivation.boundPath(of: $0) ?? "(passed by systemd)" } ?? configuration.socketPath
        let socketMode = configuration.socketMode
        let awsListen = configuration.awsListen
        if activated == nil {
            try checkSocketIsFree(configuration.socketPath)
            try prepareSocketDirectory(for: configuration.socketPath)
        }
        let metrics = DaemonMetrics()
        let outbox = try Outbox.open(
            path: configuration.databasePath, deadlines: configuration.deadlines, limits: configuration.limits,
            durability: configuration.syncEveryCommit ? .syncEveryCommit : .syncAtCheckpoints, coalescing: configuration.coalescing, metrics: metrics.outbox, logger: logger
        )
        // One sender per instance, each with its own upstream connections and pacing (shared
        // with the fleet's other hosts when fleet.postgresURL is set).
        var httpClients: [HTTPClient] = []
        var senderList: [EventSender] = []
        var fleetPacers: [FleetPacer] = []
        for (instance, upstream) in instances {
            let httpClient: HTTPClient
            do {
                httpClient = try HTTPParticipantService.makeHTTPClient(upstream)
            } catch {
                for client in httpClients { try? await client.shutdown() }
                throw error
            }
            httpClients.append(httpClient)
            var senderConfiguration = configuration.sender
            senderConfiguration.quota = instance.quota
            let fleetPacer = fleetAddress.map { _ in
                FleetPacer(instance: instance.name, id: instance.fleetKey, configuration: instance.quota,
                           fallbackShare: configuration.fleet.fallbackShare, now: SenderClock.system.seconds)
            }
            let sender = EventSender(
                outbox: outbox,
                service: HTTPParticipantService(configuration: upstream, client: httpClient),
                configuration: senderConfiguration,
                shutdownTimeout: configuration.shutdownTimeout,
                metrics: metrics.delivery(for: instance.name),
                instance: instance.name,
                pacer: fleetPacer,
                logger: logger
            )
            if let fleetPacer {
                fleetPacer.whenTokensArrive { sender.wake() }
                fleetPacers.append(fleetPacer)
            }
            senderList.append(sender)
        }
        let sender = InstanceSenders(senderList)
        let fleet = fleetAddress.map { address in
            FleetQuota(address: address, host: configuration.fleet.resolvedHostName, pacers: fleetPacers, logger: logger)
        }
        var apiConfiguration = configuration.api
        apiConfiguration.instanceNames = sender.names
        let health = HealthCheck(outbox: outbox, maxWaitingAge: configuration.healthMaxWaitingAge, senderProblems: { sender.healthProblems })
        let api = SocketAPI(
            outbox: outbox, configuration: apiConfiguration, onAccepted: { sender.wake($0) }, health: health, access: access,
            onFlush: { sender.flush() },
            senderStates: {
                Dictionary(uniqueKeysWithValues: sender.senders.map { one in
                    (one.instance, SenderState(inFlight: one.requestsInFlight, quotaRate: one.quotaRate, quotaTokens: one.quotaTokens,
                                               problems: one.healthProblems))
                })
            },
            fleetState: { fleet?.stats() },
            metrics: metrics.api
        )

        // Both listeners log "ready" once bound; the notice (and systemd's READY=1) comes when both are.
        let metricsListen = configuration.metricsListen
        let readiness = Readiness(expected: 1 + (awsListen == nil ? 0 : 1) + (metricsListen == nil ? 0 : 1)) { addresses in
            var metadata: Logger.Metadata = [
                "socket.path": "\(socketPath)",
                "database.path": "\(configuration.databasePath)",
                "upstream.endpoint": "\(upstream.endpoint)",
                "instances": "\(instances.map { "\($0.0.name)=\($0.1.endpoint)" }.joined(separator: ","))",
                // The proxy without its credentials.
                "upstream.proxy": "\(upstream.proxy?.description ?? "none")",
                "upstream.ca_file": "\(upstream.caFile.map { $0 + (upstream.caFileOnly ? " (only)" : " (and the system's roots)") } ?? "none (the system's roots)")",
            ]
            if activated != nil {
                metadata["socket.activated"] = "true"
            } else {
                metadata["socket.mode"] = "\(String(socketMode, radix: 8))"
            }
            if let fleet { metadata["fleet.database"] = "\(fleet.address)"; metadata["fleet.host"] = "\(fleet.host)" }
            if let tcp = addresses["aws"] { metadata["aws.listen"] = "\(tcp)" }
            if let tcp = addresses["metrics"] { metadata["metrics.listen"] = "\(tcp)" }
            logger.notice("participantd ready", metadata: metadata)
            notifier.ready(status: status(outbox: outbox, sender: sender))
        }
        let socketListener: any Service
        if let activated {
            if configuration.socketPath != DaemonConfiguration().socketPath {
                logger.notice("The socket comes from systemd (participantd.socket); the socket and socketMode settings are not used")
            }
            socketListener = ActivatedListener(
                descriptor: activated, router: api.router(), limits: configuration.api,
                onRunning: { readiness.ready("socket", address: socketPath) }, logger: logger
            )
        } else {
            socketListener = Application(
                router: api.router(),
                server: .guardedHTTP1(configuration.api),
                configuration: ApplicationConfiguration(address: .unixDomainSocket(path: socketPath), serverName: "participantd"),
                onServerRunning: { _ in
                    if chmod(socketPath, mode_t(socketMode)) != 0 {
                        logger.error("Cannot set the socket's mode", metadata: ["socket.path": "\(socketPath)", "error": "\(String(cString: strerror(errno)))"])
                    }
                    readiness.ready("socket", address: socketPath)
                },
                logger: logger
            )
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: outbox.writer),
            .init(service: OutboxJanitor(outbox: outbox, logger: logger)),
            .init(service: sender),
            .init(service: socketListener),
        ]
        if let fleet {
            // Before the sender in the list, so it stops after it: the last 429s still reach the row.
            services.insert(.init(service: fleet), at: 2)
        }
        if let awsListen {
            if !awsListen.isLoopback {
                logger.warning("SendEvent listens on an address other hosts may reach (aws.allowNonLoopback): anyone who reaches it can submit events", metadata: ["aws.listen": "\(awsListen)"])
            }
            services.append(.init(service: tcpListener(api.serviceRouter(), at: awsListen, named: "aws", configuration, readiness, logger)))
        }
        if let metricsListen {
            services.append(.init(service: tcpListener(api.metricsRouter(), at: metricsListen, named: "metrics", configuration, readiness, logger)))
        }
        if let reload {
            services.append(.init(service: ConfigurationReloader(
                running: configuration, load: reload,
                targets: .init(apply: { settings in
                    logSettings?.level = settings.logLevel
                    logSettings?.format = settings.logFormat.resolved(environment: environment)
                    for instance in settings.allInstances {
                        sender[instance.name]?.reconfigure(quota: instance.quota)
                    }
                    outbox.update(retention: settings.limits.retention, coalescing: settings.coalescing)
                    health.maxWaitingAge = settings.healthMaxWaitingAge
                }),
                notifier: notifier, logger: logger
            )))
        }
        // Last: the first to hear of a shutdown, so STOPPING=1 goes out before anything stops.
        services.append(.init(service: SystemdSupervision(
            notifier: notifier, status: { status(outbox: outbox, sender: sender) }, senderAlive: { sender.isAlive }, logger: logger
        )))

        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: shutdownSignals,
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            for client in httpClients { try? await client.shutdown() }
            throw error
        }
        for client in httpClients { try await client.shutdown() }
        logger.notice("participantd stopped")
    }

    /// The one line systemd shows in `systemctl status`.
    static func status(outbox: Outbox, sender: InstanceSenders) -> String {
        var line = "\(outbox.waitingCount) events waiting"
        if let problem = sender.healthProblems.first {
            line += "; degraded: \(problem)"
        }
        return line
    }

    /// A TCP listener (`aws.listen`, `metrics.listen`) with the API's limits; it tells `readiness`
    /// its address once bound (port 0 becomes the one picked).
    static func tcpListener(
        _ router: Router<DaemonRequestContext>, at address: ListenAddress, named name: String,
        _ configuration: DaemonConfiguration, _ readiness: Readiness, _ logger: Logger
    ) -> some Service {
        Application(
            router: router,
            server: .guardedHTTP1(configuration.api),
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: "participantd"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                readiness.ready(name, address: ListenAddress(host: address.host, port: port).description)
            },
            logger: logger
        )
    }

    /// Refuses to start when something listens on the socket already: binding would unlink a live
    /// daemon's socket and leave it running unreachable. A stale file left by a crash is fine.
    ///
    /// A connection that is accepted is enough to tell, whatever listens (participantd or not);
    /// a stale file refuses it (`ECONNREFUSED`). A listener whose backlog stays full for 2 s
    /// (`EAGAIN` after the send timeout) is there all the same.
    static func checkSocketIsFree(_ socketPath: String) throws {
        guard FileManager.default.fileExists(atPath: socketPath) else { return }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        // A path too long: binding will say what is wrong with it.
        guard let address = UnixSocketAddress(path: socketPath) else { return }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = address.withSocketAddress { connect(descriptor, $0, $1) }
        guard connected == 0 || errno == EAGAIN else { return }
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

/// Calls `onReady` once every listener has said it is bound.
final class Readiness: Sendable {
    private let state: Mutex<[String: String]>
    private let expected: Int
    private let onReady: @Sendable ([String: String]) -> Void

    init(expected: Int, onReady: @escaping @Sendable ([String: String]) -> Void) {
        self.state = Mutex([:])
        self.expected = expected
        self.onReady = onReady
    }

    func ready(_ listener: String, address: String) {
        let complete = state.withLock { addresses -> [String: String]? in
            addresses[listener] = address
            return addresses.count == expected ? addresses : nil
        }
        if let complete { onReady(complete) }
    }
}
