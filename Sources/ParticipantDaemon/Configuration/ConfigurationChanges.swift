import Logging
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire

/// Every configuration key with its value as text, to say what a reload changed.
extension DaemonConfiguration {
    /// Keys a reload (SIGHUP) applies to the running daemon; a change to any other key is logged
    /// as needing a restart.
    public static let reloadableKeys: Set<String> = Set(keys.filter(\.reloadable).map(\.name))

    /// Whether a reload applies `key`: one of ``reloadableKeys``, or an instance's quota.
    public static func isReloadable(_ key: String) -> Bool {
        reloadableKeys.contains(key) || (key.hasPrefix("instances.") && (key.hasSuffix(".quota.requestsPerSecond") || key.hasSuffix(".quota.burst")))
    }

    /// These settings with the reloadable ones (``reloadableKeys``) taken from `new`: what a
    /// reload runs with.
    public func withReloadableSettings(of new: DaemonConfiguration) -> DaemonConfiguration {
        var running = self
        for key in Self.keys where key.reloadable {
            key.copy(new, &running)
        }
        for index in running.instances.indices {
            if let changed = new.instances.first(where: { $0.name == running.instances[index].name }) {
                running.instances[index].quota = changed.quota
            }
        }
        return running
    }

    /// Each key's value, as the configuration file would say it.
    public var keyValues: [(key: String, value: String)] {
        Self.keys.map { ($0.name, $0.show(self)) } + instances.flatMap(\.keyValues)
    }

    /// The keys whose values differ in `other`, in key order: (key, old, new).
    public func changes(to other: DaemonConfiguration) -> [(key: String, old: String, new: String)] {
        let new = Dictionary(other.keyValues, uniquingKeysWith: { $1 })
        let old = Dictionary(keyValues, uniquingKeysWith: { $1 })
        // An instance added or removed shows as its keys going from or to nothing.
        let added = other.keyValues.filter { old[$0.key] == nil }.map { ($0.key, "", $0.value) }
        return keyValues.compactMap { key, old in
            let value = new[key] ?? ""
            guard value != old else { return nil }
            return (key, old, value)
        } + added
    }
}
