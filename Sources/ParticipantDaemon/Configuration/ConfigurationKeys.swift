import Configuration
import Foundation
import Logging
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire

/// One configuration key: its name, where its value lives in ``DaemonConfiguration``, how it is
/// read and written out, whether a reload (SIGHUP) applies it, and what it is for.
struct ConfigurationKey: Sendable {
    let name: String
    let reloadable: Bool
    /// What the key is for, as the README's configuration table says it.
    let summary: String
    let read: @Sendable (KeyReader, inout DaemonConfiguration) throws(ConfigurationError) -> Void
    /// The value as the configuration file would say it.
    let show: @Sendable (DaemonConfiguration) -> String
    /// Copies this key's value from one configuration into another (a reload).
    let copy: @Sendable (DaemonConfiguration, inout DaemonConfiguration) -> Void

    init<Value: Sendable>(
        _ name: String, _ path: WritableKeyPath<DaemonConfiguration, Value> & Sendable, _ kind: KeyKind<Value>,
        reloadable: Bool = false, _ summary: String
    ) {
        self.name = name
        self.reloadable = reloadable
        self.summary = summary
        read = { (keys: KeyReader, configuration: inout DaemonConfiguration) throws(ConfigurationError) in
            configuration[keyPath: path] = try kind.read(keys, name, configuration[keyPath: path])
        }
        show = { kind.show($0[keyPath: path]) }
        copy = { from, to in to[keyPath: path] = from[keyPath: path] }
    }
}

/// How a key's value is read (from its text, with its rule) and shown.
struct KeyKind<Value: Sendable>: Sendable {
    let read: @Sendable (KeyReader, String, Value) throws(ConfigurationError) -> Value
    let show: @Sendable (Value) -> String
}

extension KeyKind where Value == String {
    static let string = KeyKind(read: { keys, key, value throws(ConfigurationError) in try keys.string(key, default: value) }, show: { $0 })
    static let path = KeyKind(read: { keys, key, value throws(ConfigurationError) in try keys.path(key, default: value) }, show: { $0 })
}

extension KeyKind where Value == String? {
    /// A string whose empty value means none.
    static let optionalString = KeyKind(
        read: { keys, key, value throws(ConfigurationError) in try keys.string(key, default: value ?? "").nilIfEmpty }, show: { $0 ?? "" }
    )
}

extension KeyKind where Value == Int {
    static func int(in range: ClosedRange<Int>) -> KeyKind {
        KeyKind(read: { keys, key, value throws(ConfigurationError) in try keys.int(key, default: value, in: range) }, show: { "\($0)" })
    }
}

extension KeyKind where Value == Double {
    static func double(in range: ClosedRange<Double>) -> KeyKind {
        KeyKind(read: { keys, key, value throws(ConfigurationError) in try keys.double(key, default: value, in: range) }, show: { "\($0)" })
    }
}

extension KeyKind where Value == Duration {
    static func seconds(in range: ClosedRange<Double>) -> KeyKind {
        KeyKind(read: { keys, key, value throws(ConfigurationError) in try keys.seconds(key, default: value, in: range) }, show: { duration in
            let value = duration.timeInterval
            return value == value.rounded() ? String(Int(value)) : String(value)
        })
    }
}

extension KeyKind where Value == Duration {
    static func milliseconds(in range: ClosedRange<Int>) -> KeyKind {
        KeyKind(read: { keys, key, value throws(ConfigurationError) in
            .milliseconds(try keys.int(key, default: Int((value.timeInterval * 1000).rounded()), in: range))
        }, show: { "\(Int(($0.timeInterval * 1000).rounded()))" })
    }
}

extension KeyKind where Value == Bool {
    static let bool = KeyKind(read: { keys, key, value throws(ConfigurationError) in try keys.bool(key, default: value) }, show: { "\($0)" })
}

extension KeyKind where Value == UInt16 {
    static let fileMode = KeyKind(
        read: { keys, key, value throws(ConfigurationError) in try keys.fileMode(key, default: value) }, show: { "0" + String($0, radix: 8) }
    )
}

extension KeyKind where Value == Logger.Level {
    static let logLevel = KeyKind(read: { keys, key, value throws(ConfigurationError) in try keys.logLevel(key, default: value) }, show: { $0.rawValue })
}

extension KeyKind where Value == LogFormat {
    static let logFormat = KeyKind(read: { keys, key, value throws(ConfigurationError) in
        let format = try keys.string(key, default: value.rawValue)
        guard let parsed = LogFormat(rawValue: format.lowercased()) else {
            throw ConfigurationError(key: key, rule: "must be one of \(LogFormat.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(format)\"")
        }
        return parsed
    }, show: { $0.rawValue })
}

extension KeyKind where Value == [String] {
    static let names = KeyKind(read: { keys, key, _ throws(ConfigurationError) in try keys.list(key) }, show: { $0.joined(separator: ",") })
}

extension KeyKind where Value == [String]? {
    /// A list of names that may be unset: absent or empty, another source decides (`nil`).
    static let optionalNames = KeyKind(read: { keys, key, value throws(ConfigurationError) in
        guard keys.isSet(key) else { return value }
        let names = try keys.list(key)
        return names.isEmpty ? nil : names
    }, show: { $0?.joined(separator: ",") ?? "" })
}

extension KeyKind where Value == ListenAddress? {
    /// `HOST:PORT`, empty for off. (Whether it must be loopback is checked with the other keys.)
    static func listenAddress(example: String) -> KeyKind {
        KeyKind(read: { keys, key, value throws(ConfigurationError) in
            guard let text = try keys.string(key, default: value?.description ?? "").nilIfEmpty else { return nil }
            guard let address = ListenAddress(text) else {
                throw ConfigurationError(key: key, rule: "must be HOST:PORT, such as \(example), got \"\(text)\"")
            }
            return address
        }, show: { $0?.description ?? "" })
    }
}

extension DaemonConfiguration {
    /// Every key the daemon reads, in the order of the README's table: the one list that loading,
    /// reloading, the documentation test and the check for unknown keys all go by.
    static let keys: [ConfigurationKey] = {
        let week = 7.0 * 86_400
        let year = 366.0 * 86_400
        return [
            .init("socket", \.socketPath, .path, "the Unix socket"),
            .init("socketMode", \.socketMode, .fileMode, "the socket file's permission bits (octal string)"),
            .init("database", \.databasePath, .path, "the outbox"),
            .init("api.maxBodyBytes", \.api.maxBodyBytes, .int(in: 1_024...16_777_216), "largest request body (413 beyond)"),
            .init("api.maxBatchEvents", \.api.maxBatchEvents, .int(in: 1...10_000), "events in one `POST /v1/events/batch` (400 beyond)"),
            .init("api.maxBatchBytes", \.api.maxBatchBytes, .int(in: 1_024...67_108_864), "largest `POST /v1/events/batch` body (413 beyond)"),
            .init("api.maxBodyMemoryMegabytes", \.api.maxBodyMemoryMegabytes, .int(in: 1...65_536),
                  "request bodies held at once across all connections, in MiB; beyond, requests wait their turn before being read"),
            .init("api.maxHeaderBytes", \.api.maxHeaderBytes, .int(in: 1_024...1_048_576), "header bytes of one request (431 beyond)"),
            .init("api.maxHeaderCount", \.api.maxHeaderCount, .int(in: 8...1_000), "header fields of one request (431 beyond)"),
            .init("api.maxConnections", \.api.maxConnections, .int(in: 1...100_000), "connections at once per listener (one more is closed at once)"),
            .init("api.requestTimeoutSeconds", \.api.requestTimeout, .seconds(in: 0.1...3_600), "first byte to last of one request (408 and disconnect beyond)"),
            .init("api.idleTimeoutSeconds", \.api.idleTimeout, .seconds(in: 0.1...86_400), "a keep-alive connection without a request is closed"),
            .init("aws.listen", \.awsListen, .listenAddress(example: "127.0.0.1:8790 or [::1]:8790"), "loopback `HOST:PORT` answering SendEvent for AWS SDKs"),
            .init("aws.allowNonLoopback", \.awsAllowNonLoopback, .bool, "allow `aws.listen` on an address other hosts reach"),
            .init("aws.waitForDeliverySeconds", \.api.deliveryWait, .seconds(in: 0...60), "how long SendEvent's answer waits for the service's"),
            .init("metrics.listen", \.metricsListen, .listenAddress(example: "127.0.0.1:9464"), "loopback `HOST:PORT` answering `GET /metrics` (the socket always does)"),
            .init("instanceId", \.instanceId, .string, "the default instance's id or ARN: the key a fleet shares its quota under (empty: `default`)"),
            .init("region", \.region, .string, "the Connect instance's region"),
            .init("endpoint", \.endpoint, .optionalString, "a URL replacing the region's endpoint (stand-in, proxy)"),
            .init("fips", \.useFIPS, .bool, "`participant.connect-fips.{region}...`"),
            .init("dualStack", \.useDualStack, .bool, "`...{region}.api.aws`"),
            .init("upstream.connectTimeoutSeconds", \.connectTimeout, .seconds(in: 0.1...300), "connecting to the service"),
            .init("upstream.requestTimeoutSeconds", \.requestTimeout, .seconds(in: 0.1...300), "one whole SendEvent request"),
            .init("upstream.maxConnections", \.maxConnections, .int(in: 1...1_024), "keep-alive connections to the service"),
            .init("upstream.caFile", \.caFile, .optionalString, "PEM certificates trusted for the service besides the system's roots (a company CA)"),
            .init("upstream.caFileOnly", \.caFileOnly, .bool, "trust `upstream.caFile` alone, not the system's roots"),
            .init("upstream.proxy", \.proxy, .optionalString, "`http://[user:password@]host:port`; empty: `HTTPS_PROXY`/`HTTP_PROXY` decide"),
            .init("upstream.noProxy", \.noProxy, .optionalNames, "hosts, domains or `*` reached directly; empty: `NO_PROXY` decides"),
            .init("sender.maxInFlight", \.sender.maxInFlight, .int(in: 1...4_096), "requests in flight at once"),
            .init("retry.baseDelaySeconds", \.sender.retry.baseDelay, .seconds(in: 0.001...3_600), "backoff base"),
            .init("retry.maxDelaySeconds", \.sender.retry.maxDelay, .seconds(in: 0.001...86_400), "backoff cap"),
            .init("deadlines.typingSeconds", \.deadlines.typing, .seconds(in: 1...week), "deadline of typing events"),
            .init("deadlines.connectionAcknowledgedSeconds", \.deadlines.connectionAcknowledged, .seconds(in: 1...week), "deadline of connection.acknowledged"),
            .init("deadlines.messageDeliveredSeconds", \.deadlines.messageDelivered, .seconds(in: 1...week), "deadline of delivered receipts"),
            .init("deadlines.messageReadSeconds", \.deadlines.messageRead, .seconds(in: 1...week), "deadline of read receipts"),
            .init("deadlines.messageSeconds", \.deadlines.message, .seconds(in: 1...week), "deadline of messages (SendMessage)"),
            .init("deadlines.disconnectSeconds", \.deadlines.disconnect, .seconds(in: 1...week), "deadline of disconnects (DisconnectParticipant)"),
            .init("quota.requestsPerSecond", \.sender.quota.rate, .double(in: 0...10_000), reloadable: true, "client-side pacing; 0 turns it off"),
            .init("quota.burst", \.sender.quota.burst, .int(in: 1...100_000), reloadable: true, "the bucket's size"),
            .init("quota.separateMessageBucket", \.sender.separateMessageQuota, .bool,
                  "SendMessage paced in a bucket of its own of the same size; false: SendEvent and SendMessage share one"),
            .init("quota.disconnectRequestsPerSecond", \.sender.disconnectQuota.rate, .double(in: 0...10_000), "DisconnectParticipant's pacing; 0 turns it off"),
            .init("quota.disconnectBurst", \.sender.disconnectQuota.burst, .int(in: 1...100_000), "DisconnectParticipant's bucket size"),
            .init("quota.connectionRequestsPerSecond", \.sender.connectionQuota.rate, .double(in: 0...10_000), "CreateParticipantConnection's pacing; 0 turns it off"),
            .init("quota.connectionBurst", \.sender.connectionQuota.burst, .int(in: 1...100_000), "CreateParticipantConnection's bucket size"),
            .init("connections.connectParticipant", \.sender.connectParticipant, .bool,
                  "ConnectParticipant for the connections the daemon creates from a participant token, unless a submission says"),
            .init("connections.idleSeconds", \.limits.connectionIdle, .seconds(in: 1...week),
                  "a participant token is erased this long after its chat's last submission, once nothing of the chat waits"),
            .init("coalescing.typingIntervalSeconds", \.coalescing.typingInterval, .seconds(in: 0...3_600), reloadable: true,
                  "at most one typing event per connection in this time; 0 off"),
            .init("coalescing.receipts", \.coalescing.receipts, .bool, reloadable: true, "drop duplicate receipts and delivered-after-read"),
            .init("coalescing.newestReceiptOnly", \.coalescing.newestReceiptOnly, .bool, reloadable: true,
                  "a newer receipt replaces its connection's older waiting ones (read: reads and delivered; delivered: delivered)"),
            .init("coalescing.deliveredHoldMilliseconds", \.coalescing.deliveredHold, .milliseconds(in: 0...60_000), reloadable: true,
                  "a delivered receipt is due this long after it is accepted, so a read can replace it; 0 off"),
            .init("coalescing.typingFromRequestStart", \.coalescing.typingFromRequestStart, .bool, reloadable: true,
                  "the typing interval counts from the sent event's request start, not its answer"),
            .init("coalescing.fairShare", \.coalescing.fairShare, .bool, reloadable: true,
                  "when the quota binds, the connection served least recently goes first at the same priority"),
            .init("outbox.capacity", \.limits.capacity, .int(in: 1...100_000_000), "waiting events at most (503 `OutboxFull` beyond)"),
            .init("outbox.retentionSeconds", \.limits.retention, .seconds(in: 0...year), reloadable: true,
                  "how long finished events (and their ClientTokens) are kept"),
            .init("outbox.connectionBlockSeconds", \.limits.blockDuration, .seconds(in: 0...year), "how long a connection refused by the service stays refused"),
            .init("outbox.maxDatabaseMegabytes", \.limits.maxDatabaseMegabytes, .int(in: 0...16_777_216),
                  "database size; new events get 507 `StorageFull` from 90% of it"),
            .init("outbox.holdMaxSeconds", \.limits.holdMax, .seconds(in: 60...31_622_400),
                  "how long an item may stay held before it ends expired and its connection token is erased"),
            .init("outbox.startupCheckSeconds", \.limits.startupCheck, .seconds(in: 0...3_600),
                  "how long PRAGMA quick_check may take at start (a damaged file stops the daemon, exit 65); beyond, it opens unchecked with a warning; 0: no check"),
            .init("outbox.syncEveryCommit", \.syncEveryCommit, .bool,
                  "sync each commit to disk before acknowledging (false: a power loss may lose acknowledged events)"),
            .init("shutdown.timeoutSeconds", \.shutdownTimeout, .seconds(in: 0...3_600), "on SIGTERM, how long requests in flight may take"),
            .init("health.maxWaitingAgeSeconds", \.healthMaxWaitingAge, .seconds(in: 1...week), reloadable: true,
                  "health is `degraded` when the oldest waiting event is older"),
            .init("fleet.postgresURL", \.fleet.postgresURL, .optionalString,
                  "`postgres://USER@HOST:PORT/DATABASE[?sslmode=require]`: share each instance's quota with every host using it; empty: off"),
            .init("fleet.postgresPasswordFile", \.fleet.passwordFile, .optionalString, "a file holding the database password (a systemd credential)"),
            .init("fleet.postgresCAFile", \.fleet.caFile, .optionalString,
                  "a PEM bundle trusted besides the system's roots with sslmode=verify-ca or verify-full"),
            .init("fleet.hostName", \.fleet.hostName, .optionalString, "this host's name among the fleet's members (empty: the host name)"),
            .init("fleet.fallbackShare", \.fleet.fallbackShare, .double(in: 0...1),
                  "the part of an instance's rate used while the database does not answer (0: 1 / hosts seen in the last minute)"),
            .init("log.level", \.logLevel, .logLevel, reloadable: true, "trace, debug, info, notice, warning, error, critical"),
            .init("log.format", \.logFormat, .logFormat, reloadable: true, "`journal` (journald's native protocol, else `<N>` priority + logfmt), `json`, `text`; `auto`: journal under journald"),
            .init("log.journalSocket", \.logJournalSocket, .optionalString,
                  "journald's native socket, for structured entries; empty: /run/systemd/journal/socket when standard error is the journal"),
            .init("log.summarySeconds", \.logSummaryInterval, .seconds(in: 0...86_400),
                  "an `info` line this often with the items accepted, sent, failed and expired (each item's own lines are at `debug`); 0: none"),
            .init("access.allowUsers", \.access.allowUsers, .names, "users who may use the socket (SO_PEERCRED); empty with `allowGroups`: anyone who can open it"),
            .init("access.allowGroups", \.access.allowGroups, .names, "groups who may use the socket"),
            .init("access.adminGroups", \.access.adminGroups, .names, "groups who see and change every user's items with the queue commands; others, their own only"),
            .init("access.peerMaxConnections", \.api.peerMaxConnections, .int(in: 1...100_000),
                  "connections at once per listener from one user (one more is closed at once)"),
            .init("access.peerMaxWaitingShare", \.limits.peerShare, .double(in: 0.01...1),
                  "the part of `outbox.capacity` one user's waiting items may take (503 `PeerOutboxFull` beyond)"),
        ]
    }()

    /// The environment variable a key is read from: `retry.baseDelaySeconds` →
    /// `PARTICIPANTD_RETRY_BASE_DELAY_SECONDS`, `fleet.postgresURL` → `PARTICIPANTD_FLEET_POSTGRES_URL`,
    /// as swift-configuration's environment provider maps it (a word boundary where a lowercase
    /// letter meets an uppercase one).
    static func environmentVariable(for key: String) -> String {
        var name = "PARTICIPANTD"
        for component in key.split(separator: ".") {
            name += "_"
            var previous: Character?
            for character in component {
                if character.isUppercase, previous?.isLowercase == true { name += "_" }
                name += character.uppercased()
                previous = character
            }
        }
        return name
    }

    /// `PARTICIPANTD_*` variables that are not configuration keys: build switches of Package.swift,
    /// and participantctl's default instance.
    static let otherEnvironmentVariables: Set<String> = ["PARTICIPANTD_FUZZ", "PARTICIPANTD_BENCHMARKS", "PARTICIPANTD_INSTANCE"]

    /// Refuses the first key in `names` that the daemon does not know, naming the nearest one.
    /// - Parameter source: where the name was found, for the message.
    static func checkKnown(_ names: some Sequence<String>, known: [String], in source: String) throws(ConfigurationError) {
        for name in names.sorted() where !known.contains(name) {
            let suggestion = NearestName.suggestion(for: name, among: known).map { "; did you mean \($0)?" } ?? ""
            throw ConfigurationError(key: name, rule: "is not a configuration key (\(source))\(suggestion)")
        }
    }
}

/// Typed reads that tell "absent" (the default applies) from "present but wrong" (an error),
/// which the reader's own default-taking methods do not.
struct KeyReader {
    let reader: ConfigReader

    /// Whether any source sets the key.
    func isSet(_ key: String) -> Bool {
        reader.string(forKey: ConfigKey(key)) != nil || reader.stringArray(forKey: ConfigKey(key)) != nil
    }

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
