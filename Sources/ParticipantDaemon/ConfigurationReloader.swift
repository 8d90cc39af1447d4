import Logging
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire
import ServiceLifecycle
import Synchronization
import UnixSignals

/// SIGHUP: reads the configuration again from the same sources and applies what can change while
/// running (``DaemonConfiguration/reloadableKeys``). The log says what changed, and which changed
/// keys need a restart. A configuration that does not load is refused as a whole: the running
/// settings stay, and the log says why.
final class ConfigurationReloader: Service, Sendable {
    /// Applies reloadable settings to the running parts.
    struct Targets: Sendable {
        let apply: @Sendable (DaemonConfiguration) -> Void
    }

    private let load: @Sendable () async throws -> DaemonConfiguration
    private let current: Mutex<DaemonConfiguration>
    private let targets: Targets
    private let notifier: SystemdNotifier
    private let signals: [UnixSignal]
    private let logger: Logger

    init(
        running: DaemonConfiguration, load: @escaping @Sendable () async throws -> DaemonConfiguration,
        targets: Targets, notifier: SystemdNotifier, signals: [UnixSignal] = [.sighup], logger: Logger
    ) {
        self.current = Mutex(running)
        self.load = load
        self.targets = targets
        self.notifier = notifier
        self.signals = signals
        self.logger = logger
    }

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: signals)
        // Ends with the graceful shutdown, not before: a SIGHUP then must not kill the daemon.
        try? await cancelWhenGracefulShutdown {
            for await _ in hangups {
                await self.reload()
            }
        }
    }

    /// One reload; returns the changes applied (for tests).
    @discardableResult
    func reload() async -> [String] {
        notifier.reloading()
        defer { notifier.send("READY=1") }
        let new: DaemonConfiguration
        do {
            new = try await load()
        } catch {
            logger.error("Configuration not reloaded; the running settings stay", metadata: ["error": "\(error)"])
            return []
        }
        let old = current.withLock { $0 }
        let changes = old.changes(to: new)
        guard !changes.isEmpty else {
            logger.notice("Configuration reloaded: nothing changed")
            return []
        }
        let applied = changes.filter { DaemonConfiguration.isReloadable($0.key) }
        let needRestart = changes.filter { !DaemonConfiguration.isReloadable($0.key) }
        let running = old.withReloadableSettings(of: new)
        current.withLock { $0 = running }
        targets.apply(running)

        var metadata: Logger.Metadata = [:]
        for change in applied { metadata[change.key] = "\(change.old) -> \(change.new)" }
        if !applied.isEmpty {
            logger.notice("Configuration reloaded", metadata: metadata.merging(["reload.changed": "\(applied.map(\.key).joined(separator: ","))"]) { $1 })
        }
        if !needRestart.isEmpty {
            var restart: Logger.Metadata = [:]
            for change in needRestart { restart[change.key] = "\(change.old) -> \(change.new)" }
            restart["reload.restart_needed"] = "\(needRestart.map(\.key).joined(separator: ","))"
            logger.warning("Changed settings that take effect only after a restart (systemctl restart participantd)", metadata: restart)
        }
        return applied.map(\.key)
    }
}
