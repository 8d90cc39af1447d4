import Logging
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire
import ServiceLifecycle

/// What systemd hears from the daemon while it runs (`Type=notify`): `STATUS=` lines with the
/// queue size every `statusInterval`, `WATCHDOG=1` keep-alives when `WatchdogSec=` is set, and
/// `STOPPING=1` when a graceful shutdown begins. (`READY=1` is sent by ``Daemon`` once every
/// listener is bound.)
///
/// The keep-alive is sent only while the sender's loop is alive, so a stuck sender (a hung
/// database write, a deadlock) makes systemd restart the daemon instead of it hanging unnoticed.
/// It is the last service of the group, so it is the first to hear of a shutdown.
struct SystemdSupervision: Service {
    let notifier: SystemdNotifier
    let status: @Sendable () -> String
    /// Whether the sender's loop went round recently.
    let senderAlive: @Sendable () -> Bool
    var statusInterval: Duration = .seconds(5)
    /// What the ticks are read from and slept on: the daemon's one stopwatch.
    let stopwatch: Stopwatch
    let logger: Logger

    func run() async throws {
        guard notifier.isActive else {
            // Not under systemd (or Type=simple): nothing to say, nothing to wait for but the end.
            try? await gracefulShutdown()
            return
        }
        // Half systemd's interval between keep-alives, as sd_watchdog_enabled(3) advises.
        let tick = notifier.watchdogInterval.map { min($0 / 2, statusInterval) } ?? statusInterval
        var lastStatus: Duration?
        var reportedStuck = false
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                if notifier.watchdogInterval != nil {
                    if senderAlive() {
                        notifier.watchdog()
                        reportedStuck = false
                    } else if !reportedStuck {
                        reportedStuck = true
                        logger.critical("The sender's loop has not gone round in time; watchdog keep-alives withheld, systemd will restart the daemon")
                    }
                }
                let now = stopwatch.elapsed
                if lastStatus.map({ now - $0 >= statusInterval }) ?? true {
                    notifier.status(status())
                    lastStatus = now
                }
                // Ends at once on graceful shutdown: services stop one after another, so a tick
                // slept out here would hold up every other one.
                try? await cancelWhenGracefulShutdown { try await stopwatch.sleep(for: tick) }
            }
        } onGracefulShutdown: {
            notifier.stopping(status: "stopping: finishing requests in flight")
        }
    }
}

extension SystemdSupervision: CustomStringConvertible {
    var description: String { "SystemdSupervision" }
}
