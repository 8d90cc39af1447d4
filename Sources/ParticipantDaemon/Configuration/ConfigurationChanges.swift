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

    /// These settings with the reloadable ones (``reloadableKeys``) taken from `new`: what a
    /// reload runs with.
    public func withReloadableSettings(of new: DaemonConfiguration) -> DaemonConfiguration {
        var running = self
        for key in Self.keys where key.reloadable {
            key.copy(new, &running)
        }
        return running
    }

    /// Each key's value, as the configuration file would say it.
    public var keyValues: [(key: String, value: String)] {
        Self.keys.map { ($0.name, $0.show(self)) }
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
