import Foundation
import Logging
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
}
