import Logging
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire

/// Every configuration key with its value as text, to say what a reload changed.
extension DaemonConfiguration {
    /// Keys a reload (SIGHUP) applies to the running daemon; a change to any other key is logged
    /// as needing a restart.
    public static let reloadableKeys: Set<String> = [
        "log.level", "log.format",
        "quota.requestsPerSecond", "quota.burst",
        "coalescing.typingIntervalSeconds", "coalescing.receipts",
        "outbox.retentionSeconds",
        "health.maxWaitingAgeSeconds",
    ]

    /// These settings with the reloadable ones (``reloadableKeys``) taken from `new`: what a
    /// reload runs with. Kept beside the list of keys so that the two say the same.
    public func withReloadableSettings(of new: DaemonConfiguration) -> DaemonConfiguration {
        var running = self
        running.logLevel = new.logLevel
        running.logFormat = new.logFormat
        running.sender.quota = new.sender.quota
        running.coalescing = new.coalescing
        running.limits.retention = new.limits.retention
        running.healthMaxWaitingAge = new.healthMaxWaitingAge
        return running
    }

    /// Each key's value, as the configuration file would say it.
    public var keyValues: [(key: String, value: String)] {
        func seconds(_ duration: Duration) -> String {
            let value = duration.timeInterval
            return value == value.rounded() ? String(Int(value)) : String(value)
        }
        return [
            ("socket", socketPath), ("socketMode", "0" + String(socketMode, radix: 8)), ("database", databasePath),
            ("api.maxBodyBytes", "\(api.maxBodyBytes)"), ("api.maxHeaderBytes", "\(api.maxHeaderBytes)"),
            ("api.maxHeaderCount", "\(api.maxHeaderCount)"), ("api.maxConnections", "\(api.maxConnections)"),
            ("api.requestTimeoutSeconds", seconds(api.requestTimeout)), ("api.idleTimeoutSeconds", seconds(api.idleTimeout)),
            ("aws.listen", awsListen?.description ?? ""), ("aws.allowNonLoopback", "\(awsAllowNonLoopback)"),
            ("aws.waitForDeliverySeconds", seconds(api.deliveryWait)), ("metrics.listen", metricsListen?.description ?? ""),
            ("region", region), ("endpoint", endpoint ?? ""), ("fips", "\(useFIPS)"), ("dualStack", "\(useDualStack)"),
            ("upstream.connectTimeoutSeconds", seconds(connectTimeout)), ("upstream.requestTimeoutSeconds", seconds(requestTimeout)),
            ("upstream.maxConnections", "\(maxConnections)"), ("sender.maxInFlight", "\(sender.maxInFlight)"),
            ("quota.requestsPerSecond", "\(sender.quota.rate)"), ("quota.burst", "\(sender.quota.burst)"),
            ("retry.baseDelaySeconds", seconds(sender.retry.baseDelay)), ("retry.maxDelaySeconds", seconds(sender.retry.maxDelay)),
            ("deadlines.typingSeconds", seconds(deadlines.typing)),
            ("deadlines.connectionAcknowledgedSeconds", seconds(deadlines.connectionAcknowledged)),
            ("deadlines.messageDeliveredSeconds", seconds(deadlines.messageDelivered)),
            ("deadlines.messageReadSeconds", seconds(deadlines.messageRead)),
            ("coalescing.typingIntervalSeconds", seconds(coalescing.typingInterval)), ("coalescing.receipts", "\(coalescing.receipts)"),
            ("outbox.capacity", "\(limits.capacity)"), ("outbox.retentionSeconds", seconds(limits.retention)),
            ("outbox.connectionBlockSeconds", seconds(limits.blockDuration)),
            ("outbox.maxDatabaseMegabytes", "\(limits.maxDatabaseMegabytes)"),
            ("shutdown.timeoutSeconds", seconds(shutdownTimeout)),
            ("health.maxWaitingAgeSeconds", seconds(healthMaxWaitingAge)),
            ("log.level", logLevel.rawValue), ("log.format", logFormat.rawValue),
            ("access.allowUsers", access.allowUsers.joined(separator: ",")),
            ("access.allowGroups", access.allowGroups.joined(separator: ",")),
            ("access.adminGroups", access.adminGroups.joined(separator: ",")),
        ]
    }

    /// The keys whose values differ in `other`, in key order: (key, old, new).
    public func changes(to other: DaemonConfiguration) -> [(key: String, old: String, new: String)] {
        let new = Dictionary(other.keyValues, uniquingKeysWith: { $1 })
        return keyValues.compactMap { key, old in
            guard let value = new[key], value != old else { return nil }
            return (key, old, value)
        }
    }
}
