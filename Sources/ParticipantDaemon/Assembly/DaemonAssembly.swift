import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import ParticipantAPI
import ParticipantDelivery
import ParticipantFleet
import ParticipantOutbox
import ServiceLifecycle
import UnixSignals

/// The composition root: every part of the daemon built and wired, and the one `ServiceGroup`
/// whose order is the start and stop order.
///
/// The group starts its services first to last and, on SIGTERM, stops them last to first, each
/// after the one behind it has finished:
///
/// 1. systemd supervision: `STOPPING=1` before anything stops;
/// 2. the reloader (SIGHUP), the listeners: no new request, those under way answered;
/// 3. the senders: nothing more leased, requests in flight finished and recorded;
/// 4. the fleet's quota: the senders' last 429s still reach the shared row;
/// 5. the janitor, then the outbox's writer: what is pending is committed;
/// 6. the upstream HTTP clients, closed once nothing uses them.
public struct DaemonAssembly: Sendable {
    /// The group's services, first to last.
    let services: [ServiceGroupConfiguration.ServiceConfiguration]
    let shutdownSignals: [UnixSignal]
    let logger: Logger

    /// What each service is, first to last: the start order, and reversed the stop order.
    public var serviceOrder: [String] { services.map { "\($0.service)" } }

    /// Runs the group until SIGTERM or SIGINT (or cancellation), and returns once every part stopped.
    public func run() async throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: shutdownSignals, logger: logger
        ))
        try await group.run()
    }

    /// Builds the daemon's parts. Everything that can refuse to start (the configuration, a socket
    /// already in use, the outbox, the upstreams' TLS settings) is checked before anything that
    /// needs stopping exists; what is returned must be run, which stops it all.
    /// - Parameters:
    ///   - shutdownSignals: the signals that start a graceful shutdown.
    ///   - environment: where systemd's `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `LISTEN_FDS` are read.
    ///   - logSettings: the level and format `logger` follows, changed by a reload.
    ///   - reload: reads the configuration again (SIGHUP); `nil`: SIGHUP is not handled.
    ///   - stopwatch: the monotonic time every part reads and sleeps on.
    ///   - logger: where every part logs.
    public static func assemble(
        configuration: DaemonConfiguration,
        shutdownSignals: [UnixSignal],
        environment: [String: String],
        logSettings: LogSettings?,
        reload: (@Sendable () async throws -> DaemonConfiguration)?,
        stopwatch: Stopwatch = .continuous,
        logger: Logger
    ) async throws -> DaemonAssembly {
        let instances = try configuration.allInstances.map { instance in
            (instance, try configuration.upstream(for: instance, environment: environment))
        }
        let fleetAddress = try configuration.fleet.address()
        let access = try configuration.access.resolved()
        DescriptorLimit.ensure(for: configuration, logger: logger)
        let notifier = SystemdNotifier(environment: environment)
        let socket = try SocketListener.Binding(configuration: configuration, environment: environment, logger: logger)
        let metrics = DaemonMetrics()
        let outbox = try Outbox.open(
            path: configuration.databasePath, deadlines: configuration.deadlines, limits: configuration.limits,
            durability: configuration.syncEveryCommit ? .syncEveryCommit : .syncAtCheckpoints,
            coalescing: configuration.coalescing, metrics: metrics.outbox, logger: logger
        )
        // The last step that can fail; from here on everything is made to be run and stopped.
        let httpClients = try await HTTPClientShutdown.makeClients(instances.map(\.1))

        // One sender per instance, each with its own upstream connections and pacing (shared with
        // the fleet's other hosts when fleet.postgresURL is set).
        var senderList: [EventSender] = []
        var fleetPacers: [FleetPacer] = []
        for ((instance, upstream), httpClient) in zip(instances, httpClients) {
            var senderConfiguration = configuration.sender
            senderConfiguration.quota = instance.quota
            // One bucket per quota of the service's: SendEvent's (and SendMessage's, unless it has
            // its own), DisconnectParticipant's; each shared by the fleet under a key of its own.
            func fleetBucket(_ operation: String?, _ quota: QuotaPacer.Configuration) -> FleetPacer? {
                fleetAddress.map { _ in
                    FleetPacer(instance: instance.name + (operation.map { "/" + $0 } ?? ""), id: instance.fleetKey + (operation.map { "/" + $0 } ?? ""),
                               configuration: quota, fallbackShare: configuration.fleet.fallbackShare, now: stopwatch.elapsed)
                }
            }
            let fleetPacer = fleetBucket(nil, instance.quota)
            let messagePacer = configuration.sender.separateMessageQuota ? fleetBucket("SendMessage", instance.quota) : nil
            let disconnectPacer = fleetBucket("DisconnectParticipant", configuration.sender.disconnectQuota)
            let connectionPacer = fleetBucket("CreateParticipantConnection", configuration.sender.connectionQuota)
            let sender = EventSender(
                outbox: outbox,
                service: HTTPParticipantService(configuration: upstream, client: httpClient),
                configuration: senderConfiguration,
                stopwatch: stopwatch,
                shutdownTimeout: configuration.shutdownTimeout,
                metrics: metrics.delivery(for: instance.name),
                instance: instance.name,
                pacer: fleetPacer,
                messagePacer: messagePacer,
                disconnectPacer: disconnectPacer,
                connectionPacer: connectionPacer,
                logger: logger
            )
            for pacer in [fleetPacer, messagePacer, disconnectPacer, connectionPacer].compactMap({ $0 }) {
                pacer.whenTokensArrive { sender.wake() }
                fleetPacers.append(pacer)
            }
            senderList.append(sender)
        }
        let senders = InstanceSenders(senderList)
        let fleet = fleetAddress.map { address in
            FleetQuota(address: address, host: configuration.fleet.resolvedHostName, pacers: fleetPacers, stopwatch: stopwatch, logger: logger)
        }

        let delivery = SenderControl(senders: senders, fleet: fleet)
        var apiConfiguration = configuration.api
        apiConfiguration.instanceNames = senders.names
        let health = HealthCheck(outbox: outbox, maxWaitingAge: configuration.healthMaxWaitingAge, delivery: delivery)
        let api = DaemonAPI(
            outbox: outbox, configuration: apiConfiguration, delivery: delivery, health: health, access: access, metrics: metrics.api
        )
        let status: @Sendable () -> String = { statusLine(outbox: outbox, senders: senders) }

        // Each listener says when it is bound; the notice (and systemd's READY=1) comes when all are.
        let readiness = Readiness(
            expected: 1 + (configuration.awsListen == nil ? 0 : 1) + (configuration.metricsListen == nil ? 0 : 1)
        ) { addresses in
            var metadata = socket.readyMetadata
            let upstream = instances[0].1
            metadata["database.path"] = "\(configuration.databasePath)"
            metadata["upstream.endpoint"] = "\(upstream.endpoint)"
            metadata["instances"] = "\(instances.map { "\($0.0.name)=\($0.1.endpoint)" }.joined(separator: ","))"
            // The proxy without its credentials.
            metadata["upstream.proxy"] = "\(upstream.proxy?.description ?? "none")"
            metadata["upstream.ca_file"] = "\(upstream.caFile.map { $0 + (upstream.caFileOnly ? " (only)" : " (and the system's roots)") } ?? "none (the system's roots)")"
            if let fleet { metadata["fleet.database"] = "\(fleet.address)"; metadata["fleet.host"] = "\(fleet.host)" }
            if let tcp = addresses["aws"] { metadata["aws.listen"] = "\(tcp)" }
            if let tcp = addresses["metrics"] { metadata["metrics.listen"] = "\(tcp)" }
            logger.notice("participantd ready", metadata: metadata)
            notifier.ready(status: status())
        }

        // First to last: the start order; the stop order is the reverse (see above).
        var services: [any Service] = [
            HTTPClientShutdown(clients: httpClients),
            outbox.writer,
            OutboxJanitor(outbox: outbox, logger: logger),
            // Stopped after the listeners and the senders, so its last line counts their last items.
            ActivitySummary(
                tally: metrics.activity, waiting: { outbox.waitingCount }, interval: configuration.logSummaryInterval,
                stopwatch: stopwatch, logger: logger
            ),
        ]
        if let fleet { services.append(fleet) }
        services.append(senders)
        services.append(socket.listener(router: api.router(), hotRoutes: api.hotRoutes(), limits: configuration.api, readiness: readiness, logger: logger))
        if let awsListen = configuration.awsListen {
            if !awsListen.isLoopback {
                logger.warning("SendEvent listens on an address other hosts may reach (aws.allowNonLoopback): anyone who reaches it can submit events", metadata: ["aws.listen": "\(awsListen)"])
            }
            // A client off loopback cannot be named: let in unnamed only where the operator opened
            // the listener to other hosts and no allow list needs a name.
            var awsLimits = configuration.api
            awsLimits.allowsAnonymousRemotePeers = !awsListen.isLoopback && !configuration.access.restrictsPeers
            services.append(TCPListener.make(api.serviceRouter(), at: awsListen, named: "aws", limits: awsLimits, readiness: readiness, logger: logger))
        }
        if let metricsListen = configuration.metricsListen {
            services.append(TCPListener.make(api.metricsRouter(), at: metricsListen, named: "metrics", limits: configuration.api, readiness: readiness, logger: logger))
        }
        if let reload {
            services.append(ConfigurationReloader(
                running: configuration, load: reload,
                targets: .init(apply: { settings in
                    logSettings?.level = settings.logLevel
                    logSettings?.format = settings.logFormat.resolved(environment: environment)
                    for instance in settings.allInstances {
                        senders[instance.name]?.reconfigure(quota: instance.quota)
                    }
                    outbox.update(retention: settings.limits.retention, coalescing: settings.coalescing)
                    health.maxWaitingAge = settings.healthMaxWaitingAge
                }),
                notifier: notifier, logger: logger
            ))
        }
        // Last: the first to hear of a shutdown, so STOPPING=1 goes out before anything stops.
        services.append(SystemdSupervision(
            notifier: notifier, status: status, senderAlive: { senders.isAlive }, stopwatch: stopwatch, logger: logger
        ))
        // The writer's storage failure (fail-stop) stops the group gracefully, not by cancellation:
        // the requests its failed commit refused still get their 503 before the daemon exits 74.
        return DaemonAssembly(services: services.map { service in
            service is OutboxWriter
                ? .init(service: service, failureTerminationBehavior: .gracefullyShutdownGroup)
                : .init(service: service)
        }, shutdownSignals: shutdownSignals, logger: logger)
    }

    /// The one line systemd shows in `systemctl status`.
    static func statusLine(outbox: Outbox, senders: InstanceSenders) -> String {
        var line = "\(outbox.waitingCount) events waiting"
        if let problem = senders.healthProblems.first {
            line += "; degraded: \(problem)"
        }
        return line
    }
}
