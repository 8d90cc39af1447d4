import Configuration
import ParticipantDelivery
import ParticipantWire

/// One Connect instance the daemon sends for: where its service is, and its quota. The
/// top-level keys `instanceId`, `region`, `endpoint`, `fips`, `dualStack` and `quota.*` configure
/// the instance named `default`; `instances.NAME.*` (YAML only) configure the others.
public struct InstanceConfiguration: Sendable, Equatable {
    public var name: String
    /// The Connect instance's id or ARN: the key a fleet shares its quota under. Empty: the name.
    public var id = ""
    public var region = "us-east-1"
    /// Overrides the region's endpoint when set (a stand-in, a proxy).
    public var endpoint: String?
    public var useFIPS = false
    public var useDualStack = false
    public var quota = QuotaPacer.Configuration()

    public init(name: String) {
        self.name = name
    }

    /// The key the fleet's database knows this instance by.
    public var fleetKey: String { id.isEmpty ? name : id }

    /// The prefix of this instance's keys: `""` for the default instance, `instances.NAME.` otherwise.
    var keyPrefix: String { name == InstanceName.defaultName ? "" : "instances.\(name)." }

    /// The endpoint SendEvent goes to, from `endpoint` or the region; an error names this instance's key.
    public func resolvedEndpoint() throws(ConfigurationError) -> String {
        do {
            return try ServiceEndpoint.resolve(region: region, endpoint: endpoint, fips: useFIPS, dualStack: useDualStack)
        } catch {
            throw ConfigurationError(key: keyPrefix + error.key, rule: error.rule)
        }
    }

    /// The keys an `instances.NAME` mapping may hold, with their defaults shown in the README.
    static let keys: [(name: String, summary: String)] = [
        ("id", "the Connect instance's id or ARN: the key a fleet shares the quota under (empty: the name)"),
        ("region", "its region"),
        ("endpoint", "a URL replacing the region's endpoint"),
        ("fips", "FIPS endpoint"),
        ("dualStack", "dual-stack endpoint"),
        ("quota.requestsPerSecond", "its quota's rate; 0 turns pacing off"),
        ("quota.burst", "its quota's burst"),
    ]

    /// Reads `instances.NAME.*`; absent keys keep the defaults of a new instance.
    static func read(name: String, from keys: KeyReader) throws(ConfigurationError) -> InstanceConfiguration {
        let prefix = "instances.\(name)."
        if let problem = InstanceName.problem(name) {
            throw ConfigurationError(key: "instances.\(name)", rule: "the name \(problem)")
        }
        if name == InstanceName.defaultName {
            throw ConfigurationError(
                key: "instances.\(name)",
                rule: "the default instance is configured by the top-level keys instanceId, region, endpoint, fips, dualStack and quota; use another name"
            )
        }
        var instance = InstanceConfiguration(name: name)
        instance.id = try keys.string(prefix + "id", default: instance.id)
        instance.region = try keys.string(prefix + "region", default: instance.region)
        instance.endpoint = try keys.string(prefix + "endpoint", default: "").nilIfEmpty
        instance.useFIPS = try keys.bool(prefix + "fips", default: false)
        instance.useDualStack = try keys.bool(prefix + "dualStack", default: false)
        instance.quota.rate = try keys.double(prefix + "quota.requestsPerSecond", default: instance.quota.rate, in: 0...10_000)
        instance.quota.burst = try keys.int(prefix + "quota.burst", default: instance.quota.burst, in: 1...100_000)
        _ = try instance.resolvedEndpoint()
        return instance
    }

    /// Each key's value as the configuration file would say it, for a reload's list of changes.
    var keyValues: [(key: String, value: String)] {
        let prefix = "instances.\(name)."
        return [
            (prefix + "id", id), (prefix + "region", region), (prefix + "endpoint", endpoint ?? ""),
            (prefix + "fips", "\(useFIPS)"), (prefix + "dualStack", "\(useDualStack)"),
            (prefix + "quota.requestsPerSecond", "\(quota.rate)"), (prefix + "quota.burst", "\(quota.burst)"),
        ]
    }
}
