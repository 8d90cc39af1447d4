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
    public var region = "us-east-1"
    /// Overrides the region's endpoint when set (a stand-in, a proxy).
    public var endpoint: String?
    public var useFIPS = false
    public var useDualStack = false
    public var connectTimeout: Duration = .seconds(5)
    public var requestTimeout: Duration = .seconds(10)
    public var maxConnections = 16
    public var sender = EventSender.Configuration()
    public var deadlines = EventDeadlines()
    public var limits = OutboxLimits()
    public var coalescing = CoalescingRules()
    /// On SIGTERM, how long requests in flight may take before they are cut off and their events
    /// go back to `queued`.
    public var shutdownTimeout: Duration = .seconds(10)
    public var logLevel: Logger.Level = .info
    /// `auto`: `journal` under systemd's journal, `text` elsewhere.
    public var logFormat: LogFormat = .auto
    /// A loopback TCP address that answers `GET /metrics` (`metrics.listen`); `nil`: only the socket does.
    public var metricsListen: ListenAddress?
    /// Who may use the socket and change the queue (`access.*`).
    public var access = AccessPolicy()
    /// Health is `degraded` when the oldest waiting event was accepted longer ago than this.
    public var healthMaxWaitingAge: Duration = .seconds(300)

    public init() {}

    /// The endpoint SendEvent goes to, from `endpoint` or the region.
    public func resolvedEndpoint() throws(ConfigurationError) -> String {
        do {
            return try ServiceEndpoint.resolve(region: region, endpoint: endpoint, fips: useFIPS, dualStack: useDualStack)
        } catch {
            throw ConfigurationError(key: error.key, rule: error.rule)
        }
    }

    public var upstream: HTTPParticipantService.Configuration {
        get throws(ConfigurationError) {
            var upstream = HTTPParticipantService.Configuration(endpoint: try resolvedEndpoint())
            upstream.connectTimeout = connectTimeout
            upstream.requestTimeout = requestTimeout
            upstream.maxConnections = maxConnections
            return upstream
        }
    }
}

extension DaemonConfiguration {
    /// Reads every key from `reader`; a key that is absent keeps its default, a key that is
    /// present but wrong is an error naming it.
    public static func load(from reader: ConfigReader) throws(ConfigurationError) -> DaemonConfiguration {
        let keys = KeyReader(reader: reader)
        var config = DaemonConfiguration()
        config.socketPath = try keys.path("socket", default: config.socketPath)
        config.socketMode = try keys.fileMode("socketMode", default: config.socketMode)
        config.databasePath = try keys.path("database", default: config.databasePath)
        config.api.maxBodyBytes = try keys.int("api.maxBodyBytes", default: config.api.maxBodyBytes, in: 1_024...16_777_216)
        config.api.maxHeaderBytes = try keys.int("api.maxHeaderBytes", default: config.api.maxHeaderBytes, in: 1_024...1_048_576)
        config.api.maxHeaderCount = try keys.int("api.maxHeaderCount", default: config.api.maxHeaderCount, in: 8...1_000)
        config.api.maxConnections = try keys.int("api.maxConnections", default: config.api.maxConnections, in: 1...100_000)
        config.api.requestTimeout = try keys.seconds("api.requestTimeoutSeconds", default: config.api.requestTimeout, in: 0.1...3_600)
        config.api.idleTimeout = try keys.seconds("api.idleTimeoutSeconds", default: config.api.idleTimeout, in: 0.1...86_400)
        config.api.deliveryWait = try keys.seconds("aws.waitForDeliverySeconds", default: config.api.deliveryWait, in: 0...60)
        config.awsAllowNonLoopback = try keys.bool("aws.allowNonLoopback", default: config.awsAllowNonLoopback)
        if let listen = try keys.string("aws.listen", default: "").nilIfEmpty {
            guard let address = ListenAddress(listen) else {
                throw ConfigurationError(key: "aws.listen", rule: "must be HOST:PORT, such as 127.0.0.1:8790 or [::1]:8790, got \"\(listen)\"")
            }
            guard address.isLoopback || config.awsAllowNonLoopback else {
                throw ConfigurationError(
                    key: "aws.listen",
                    rule: "must be a loopback address (127.0.0.1, [::1] or localhost), got \(address): any host that reaches it could submit events; set aws.allowNonLoopback to true to force it"
                )
            }
            config.awsListen = address
        }
        if let listen = try keys.string("metrics.listen", default: "").nilIfEmpty {
            guard let address = ListenAddress(listen) else {
                throw ConfigurationError(key: "metrics.listen", rule: "must be HOST:PORT, such as 127.0.0.1:9464, got \"\(listen)\"")
            }
            guard address.isLoopback else {
                throw ConfigurationError(key: "metrics.listen", rule: "must be a loopback address (127.0.0.1, [::1] or localhost), got \(address)")
            }
            config.metricsListen = address
        }
        config.region = try keys.string("region", default: config.region)
        config.endpoint = try keys.string("endpoint", default: "").nilIfEmpty
        config.useFIPS = try keys.bool("fips", default: config.useFIPS)
        config.useDualStack = try keys.bool("dualStack", default: config.useDualStack)
        config.connectTimeout = try keys.seconds("upstream.connectTimeoutSeconds", default: config.connectTimeout, in: 0.1...300)
        config.requestTimeout = try keys.seconds("upstream.requestTimeoutSeconds", default: config.requestTimeout, in: 0.1...300)
        config.maxConnections = try keys.int("upstream.maxConnections", default: config.maxConnections, in: 1...1_024)
        config.sender.maxInFlight = try keys.int("sender.maxInFlight", default: config.sender.maxInFlight, in: 1...4_096)
        config.sender.quota.rate = try keys.double("quota.requestsPerSecond", default: config.sender.quota.rate, in: 0...10_000)
        config.sender.quota.burst = try keys.int("quota.burst", default: config.sender.quota.burst, in: 1...100_000)
        config.sender.retry.baseDelay = try keys.seconds("retry.baseDelaySeconds", default: config.sender.retry.baseDelay, in: 0.001...3_600)
        config.sender.retry.maxDelay = try keys.seconds("retry.maxDelaySeconds", default: config.sender.retry.maxDelay, in: 0.001...86_400)
        if config.sender.retry.maxDelay < config.sender.retry.baseDelay {
            throw ConfigurationError(key: "retry.maxDelaySeconds", rule: "must not be less than retry.baseDelaySeconds")
        }
        let week = 7.0 * 86_400
        config.deadlines.typing = try keys.seconds("deadlines.typingSeconds", default: config.deadlines.typing, in: 1...week)
        config.deadlines.connectionAcknowledged = try keys.seconds(
            "deadlines.connectionAcknowledgedSeconds", default: config.deadlines.connectionAcknowledged, in: 1...week)
        config.deadlines.messageDelivered = try keys.seconds(
            "deadlines.messageDeliveredSeconds", default: config.deadlines.messageDelivered, in: 1...week)
        config.deadlines.messageRead = try keys.seconds("deadlines.messageReadSeconds", default: config.deadlines.messageRead, in: 1...week)
        config.limits.capacity = try keys.int("outbox.capacity", default: config.limits.capacity, in: 1...100_000_000)
        config.limits.retention = try keys.seconds("outbox.retentionSeconds", default: config.limits.retention, in: 0...(366 * 86_400))
        config.limits.maxDatabaseMegabytes = try keys.int(
            "outbox.maxDatabaseMegabytes", default: config.limits.maxDatabaseMegabytes, in: 0...16_777_216)
        config.limits.blockDuration = try keys.seconds(
            "outbox.connectionBlockSeconds", default: config.limits.blockDuration, in: 0...(366 * 86_400))
        config.coalescing.typingInterval = try keys.seconds(
            "coalescing.typingIntervalSeconds", default: config.coalescing.typingInterval, in: 0...3_600)
        config.coalescing.receipts = try keys.bool("coalescing.receipts", default: config.coalescing.receipts)
        config.shutdownTimeout = try keys.seconds("shutdown.timeoutSeconds", default: config.shutdownTimeout, in: 0...3_600)
        config.logLevel = try keys.logLevel("log.level", default: config.logLevel)
        let format = try keys.string("log.format", default: config.logFormat.rawValue)
        guard let logFormat = LogFormat(rawValue: format.lowercased()) else {
            throw ConfigurationError(key: "log.format", rule: "must be one of \(LogFormat.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(format)\"")
        }
        config.logFormat = logFormat
        config.access.allowUsers = try keys.list("access.allowUsers")
        config.access.allowGroups = try keys.list("access.allowGroups")
        config.access.adminGroups = try keys.list("access.adminGroups")
        config.healthMaxWaitingAge = try keys.seconds(
            "health.maxWaitingAgeSeconds", default: config.healthMaxWaitingAge, in: 1...(7 * 86_400))
        _ = try config.resolvedEndpoint()
        return config
    }
}

/// Typed reads that tell "absent" (the default applies) from "present but wrong" (an error),
/// which the reader's own default-taking methods do not.
private struct KeyReader {
    let reader: ConfigReader

    func string(_ key: String, default defaultValue: String) throws(ConfigurationError) -> String {
        reader.string(forKey: ConfigKey(key)) ?? defaultValue
    }

    /// A list of names: a YAML sequence, or one string of names separated by commas or spaces
    /// (as an environment variable or flag gives it).
    func list(_ key: String) throws(ConfigurationError) -> [String] {
        if let values = reader.stringArray(forKey: ConfigKey(key)) {
            return values.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return [] }
        return raw.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
    }

    func path(_ key: String, default defaultValue: String) throws(ConfigurationError) -> String {
        let value = try string(key, default: defaultValue)
        guard value.hasPrefix("/") || value.hasPrefix(".") else {
            throw ConfigurationError(key: key, rule: "must be a file path (absolute, or relative starting with ./), got \"\(value)\"")
        }
        return value
    }

    func int(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return defaultValue }
        guard let value = reader.int(forKey: ConfigKey(key)) ?? Int(raw) else {
            throw ConfigurationError(key: key, rule: "must be a whole number, got \"\(raw)\"")
        }
        guard range.contains(value) else {
            throw ConfigurationError(key: key, rule: "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    func seconds(_ key: String, default defaultValue: Duration, in range: ClosedRange<Double>) throws(ConfigurationError) -> Duration {
        let value = try double(key, default: defaultValue.timeInterval, in: range, unit: " seconds")
        return .milliseconds(Int64((value * 1000).rounded()))
    }

    func double(_ key: String, default defaultValue: Double, in range: ClosedRange<Double>, unit: String = "") throws(ConfigurationError) -> Double {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return defaultValue }
        guard let value = reader.double(forKey: ConfigKey(key)) ?? Double(raw), value.isFinite else {
            throw ConfigurationError(key: key, rule: "must be a number\(unit.isEmpty ? "" : " of" + unit), got \"\(raw)\"")
        }
        guard range.contains(value) else {
            throw ConfigurationError(key: key, rule: "must be between \(range.lowerBound) and \(range.upperBound)\(unit), got \(value)")
        }
        return value
    }

    func bool(_ key: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return defaultValue }
        switch raw.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw ConfigurationError(key: key, rule: "must be true or false, got \"\(raw)\"")
        }
    }

    /// Octal permission bits as a string (`"0660"`): YAML would read a bare 0660 as decimal.
    func fileMode(_ key: String, default defaultValue: UInt16) throws(ConfigurationError) -> UInt16 {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return defaultValue }
        guard let value = UInt16(raw, radix: 8), value <= 0o777 else {
            throw ConfigurationError(key: key, rule: "must be octal permission bits such as \"0660\", got \"\(raw)\"")
        }
        return value
    }

    func logLevel(_ key: String, default defaultValue: Logger.Level) throws(ConfigurationError) -> Logger.Level {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return defaultValue }
        guard let level = Logger.Level(rawValue: raw.lowercased()) else {
            let allowed = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(key: key, rule: "must be one of \(allowed), got \"\(raw)\"")
        }
        return level
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
