import Configuration
import Foundation
import Logging
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire

/// Everything the daemon can be told, with its defaults. `config/participantd.yaml` documents
/// every key; the README lists the flags and environment variables.
public struct DaemonConfiguration: Sendable, Equatable {
    /// The Unix socket local programs submit events on.
    public var socketPath = "/run/participantd/participantd.sock"
    /// The socket file's permission bits: 0660 lets the owner's group submit.
    public var socketMode: UInt16 = 0o660
    public var databasePath = "/var/lib/participantd/outbox.sqlite"
    /// The API's limits (`api.*`) and the SendEvent route's wait (`aws.waitForDeliverySeconds`).
    public var api = APIConfiguration()
    /// A loopback TCP address that answers `POST /participant/event` for AWS SDKs (`aws.listen`);
    /// `nil`: off.
    public var awsListen: ListenAddress?
    /// Lets `aws.listen` be an address other hosts can reach (`aws.allowNonLoopback`).
    public var awsAllowNonLoopback = false
    /// The default instance's id or ARN, the key a fleet shares its quota under (empty: `default`).
    public var instanceId = ""
    public var region = "us-east-1"
    /// Overrides the region's endpoint when set (a stand-in, a proxy).
    public var endpoint: String?
    public var useFIPS = false
    public var useDualStack = false
    public var connectTimeout: Duration = .seconds(5)
    public var requestTimeout: Duration = .seconds(10)
    public var maxConnections = 16
    /// PEM certificates trusted for the service besides (or, with `caFileOnly`, instead of) the system's.
    public var caFile: String?
    public var caFileOnly = false
    /// The proxy URL (`upstream.proxy`); `nil`: the environment's `HTTPS_PROXY`/`HTTP_PROXY`.
    public var proxy: String?
    /// Hosts reached without the proxy (`upstream.noProxy`); `nil`: the environment's `NO_PROXY`.
    public var noProxy: [String]?
    public var sender = EventSender.Configuration()
    public var deadlines = EventDeadlines()
    public var limits = OutboxLimits()
    /// `outbox.syncEveryCommit`: each commit's WAL synced to disk before its events are
    /// acknowledged (by the outbox's writer, ``OutboxWriter``); `false` syncs at SQLite's
    /// checkpoints only, and a power loss may lose acknowledged events.
    public var syncEveryCommit = true
    public var coalescing = CoalescingRules()
    /// On SIGTERM, how long requests in flight may take before they are cut off and their events
    /// go back to `queued`.
    public var shutdownTimeout: Duration = .seconds(10)
    public var logLevel: Logger.Level = .info
    /// `auto`: `journal` under systemd's journal, `text` elsewhere.
    public var logFormat: LogFormat = .auto
    /// The journal's native socket (`log.journalSocket`); `nil`: `/run/systemd/journal/socket`
    /// when standard error is the journal (see ``LogSettings/journalSocket(configured:environment:)``).
    public var logJournalSocket: String?
    /// How often the `info` line with the counts of items accepted, sent, failed and expired is
    /// written (`log.summarySeconds`); zero: never.
    public var logSummaryInterval: Duration = .seconds(60)
    /// A loopback TCP address that answers `GET /metrics` (`metrics.listen`); `nil`: only the socket does.
    public var metricsListen: ListenAddress?
    /// Who may use the socket and change the queue (`access.*`).
    public var access = AccessPolicy()
    /// Health is `degraded` when the oldest waiting event was accepted longer ago than this.
    public var healthMaxWaitingAge: Duration = .seconds(300)
    /// The instances other than `default` (`instances.NAME.*`), in name order.
    public var instances: [InstanceConfiguration] = []
    /// The quota shared with other hosts (`fleet.*`).
    public var fleet = FleetSettings()

    public init() {}

    /// The instance the top-level keys configure.
    public var defaultInstance: InstanceConfiguration {
        var instance = InstanceConfiguration(name: InstanceName.defaultName)
        instance.id = instanceId
        instance.region = region
        instance.endpoint = endpoint
        instance.useFIPS = useFIPS
        instance.useDualStack = useDualStack
        instance.quota = sender.quota
        return instance
    }

    /// Every instance: `default` first, then the named ones.
    public var allInstances: [InstanceConfiguration] { [defaultInstance] + instances }

    /// The default instance's endpoint, from `endpoint` or the region.
    public func resolvedEndpoint() throws(ConfigurationError) -> String {
        try defaultInstance.resolvedEndpoint()
    }

    /// The default instance's upstream client settings.
    public func upstream(environment: [String: String]) throws(ConfigurationError) -> HTTPParticipantService.Configuration {
        try upstream(for: defaultInstance, environment: environment)
    }

    /// An instance's upstream client's settings: its endpoint, its proxy (from these settings or
    /// `environment`) and its trust; a CA file that cannot be read is an error naming its key.
    public func upstream(for instance: InstanceConfiguration, environment: [String: String]) throws(ConfigurationError) -> HTTPParticipantService.Configuration {
        var upstream = HTTPParticipantService.Configuration(endpoint: try instance.resolvedEndpoint())
        upstream.connectTimeout = connectTimeout
        upstream.requestTimeout = requestTimeout
        upstream.maxConnections = maxConnections
        upstream.proxy = try UpstreamProxy.resolve(endpoint: upstream.endpoint, configured: proxy, noProxy: noProxy, environment: environment)
        if let caFile {
            _ = try HTTPParticipantService.loadCertificates(caFile)
            upstream.caFile = caFile
        }
        upstream.caFileOnly = caFileOnly
        return upstream
    }
}

extension DaemonConfiguration {
    /// Reads every key of ``keys`` from `reader`; a key that is absent keeps its default, a key
    /// that is present but wrong is an error naming it. Then the rules between keys.
    /// - Parameter instanceNames: the names under `instances` (which a key table cannot list).
    public static func load(from reader: ConfigReader, instanceNames: [String] = []) throws(ConfigurationError) -> DaemonConfiguration {
        let keys = KeyReader(reader: reader)
        var config = DaemonConfiguration()
        for key in Self.keys {
            try key.read(keys, &config)
        }
        for name in instanceNames.sorted() {
            config.instances.append(try InstanceConfiguration.read(name: name, from: keys))
        }
        var seen: [String: String] = [:]
        for instance in config.allInstances {
            if let other = seen[instance.fleetKey] {
                throw ConfigurationError(
                    key: instance.keyPrefix.isEmpty ? "instanceId" : instance.keyPrefix + "id",
                    rule: "is \"\(instance.fleetKey)\", the id of instance \(other) too: one Connect instance is configured once"
                )
            }
            seen[instance.fleetKey] = instance.name
        }
        try config.fleet.check()
        if let address = config.awsListen, !address.isLoopback, !config.awsAllowNonLoopback {
            throw ConfigurationError(
                key: "aws.listen",
                rule: "must be a loopback address (127.0.0.1, [::1] or localhost), got \(address): any host that reaches it could submit events; set aws.allowNonLoopback to true to force it"
            )
        }
        if let address = config.metricsListen, !address.isLoopback {
            throw ConfigurationError(key: "metrics.listen", rule: "must be a loopback address (127.0.0.1, [::1] or localhost), got \(address)")
        }
        if config.api.peerMaxConnections > config.api.maxConnections {
            throw ConfigurationError(
                key: "access.peerMaxConnections",
                rule: "must not be more than api.maxConnections (\(config.api.maxConnections)), got \(config.api.peerMaxConnections)"
            )
        }
        if config.caFileOnly && config.caFile == nil {
            throw ConfigurationError(key: "upstream.caFileOnly", rule: "needs upstream.caFile: with no roots at all nothing could be trusted")
        }
        if config.sender.retry.maxDelay < config.sender.retry.baseDelay {
            throw ConfigurationError(key: "retry.maxDelaySeconds", rule: "must not be less than retry.baseDelaySeconds")
        }
        _ = try config.resolvedEndpoint()
        return config
    }
}
