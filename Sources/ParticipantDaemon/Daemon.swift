import Foundation
import Logging
import ParticipantOutbox
import ParticipantWire
import ServiceLifecycle
import UnixSignals

/// The daemon: its parts assembled (``DaemonAssembly``) and run as one `ServiceGroup`.
public enum Daemon {
    /// Opens the outbox, binds the socket and runs until SIGTERM or SIGINT (or cancellation).
    /// - Parameters:
    ///   - shutdownSignals: the signals that start a graceful shutdown.
    ///   - environment: where systemd's `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `LISTEN_FDS` are read.
    ///   - logSettings: the level and format `logger` follows, changed by a reload.
    ///   - reload: reads the configuration again (SIGHUP); `nil`: SIGHUP is not handled.
    ///   - logger: where every part logs.
    public static func run(
        configuration: DaemonConfiguration,
        shutdownSignals: [UnixSignal] = [.sigterm, .sigint],
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logSettings: LogSettings? = nil,
        reload: (@Sendable () async throws -> DaemonConfiguration)? = nil,
        logger: Logger
    ) async throws {
        let daemon = try await DaemonAssembly.assemble(
            configuration: configuration, shutdownSignals: shutdownSignals, environment: environment,
            logSettings: logSettings, reload: reload, logger: logger
        )
        try await daemon.run()
        logger.notice("participantd stopped")
    }

    /// The process's exit status after `run` threw `error`, and what to log at `critical`:
    /// - 78 (EX_CONFIG) for a wrong setting: the unit's `RestartPreventExitStatus=` stops the
    ///   restart loop a bad configuration would cause;
    /// - 74 (EX_IOERR) after the outbox's storage failed (fail-stop): systemd restarts the
    ///   daemon, and SQLite's recovery reads back what the disk holds;
    /// - 65 (EX_DATAERR) for a damaged outbox file, or one a newer participantd migrated: not
    ///   restarted either (`RestartPreventExitStatus=`), it needs an operator, and the message
    ///   says the way back;
    /// - 1 for anything else.
    public static func exit(for error: any Error) -> (status: Int32, message: String) {
        switch error {
        case is ConfigurationError: (78, "participantd cannot run: a setting is wrong")
        case OutboxError.failed: (74, "participantd stopped: the outbox's storage failed; it must restart to trust what is on disk")
        case OutboxError.damaged: (65, "participantd cannot start: the outbox database is damaged")
        case OutboxError.newerSchema: (65, "participantd cannot start: a newer participantd migrated the outbox database")
        default: (1, "participantd cannot run")
        }
    }
}
