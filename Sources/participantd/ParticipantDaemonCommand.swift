import ArgumentParser
import Foundation
import Logging
import ParticipantDaemon
import ParticipantWire

@main
struct ParticipantDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "participantd",
        abstract: "Delivers Amazon Connect SendEvent events from local programs, durably and exactly once.",
        discussion: """
            Settings come from these flags, then PARTICIPANTD_* environment variables, then the YAML file \
            given with --config, then the built-in defaults (config/participantd.yaml lists every key).
            """,
        version: DaemonVersion.current
    )

    @Option(help: "A YAML configuration file.")
    var config: String?

    @Option(help: "The Unix socket to listen on (key: socket).")
    var socket: String?

    @Option(help: "The outbox database file (key: database).")
    var database: String?

    @Option(help: "The service's URL, overriding the region's (key: endpoint), e.g. http://127.0.0.1:8787.")
    var endpoint: String?

    @Option(help: "The AWS region of the Connect instance (key: region).")
    var region: String?

    @Option(help: "Also answer SendEvent (POST /participant/event) for AWS SDKs on this loopback TCP address, e.g. 127.0.0.1:8790 (key: aws.listen).")
    var listen: String?

    @Option(help: "Share each Connect instance's quota with the other hosts using this PostgreSQL database, e.g. postgres://participantd@db.internal/participantd?sslmode=require (key: fleet.postgresURL).")
    var fleetPostgresUrl: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical (key: log.level).")
    var logLevel: String?

    @Option(help: "auto, journal, json or text (key: log.format).")
    var logFormat: String?

    func run() async throws {
        // Before anything secret is read: the configuration, the outbox's tokens, the fleet's password.
        let coreDumpProblem = CoreDumps.disable()
        var flags: [String: String] = [:]
        flags["socket"] = socket
        flags["database"] = database
        flags["endpoint"] = endpoint
        flags["region"] = region
        flags["log.level"] = logLevel
        flags["log.format"] = logFormat
        flags["aws.listen"] = listen
        flags["fleet.postgresURL"] = fleetPostgresUrl

        let environment = ProcessInfo.processInfo.environment
        let configFile = config
        let load: @Sendable () async throws -> DaemonConfiguration = { [flags] in
            try await ConfigurationSources.load(flags: flags, environment: environment, configFile: configFile)
        }
        let settings: DaemonConfiguration
        do {
            settings = try await load()
        } catch {
            FileHandle.standardError.write(Data("participantd: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG: systemd does not restart in a loop on a bad configuration
        }

        let logSettings = LogSettings(
            level: settings.logLevel, format: settings.logFormat.resolved(environment: environment),
            journal: LogSettings.journalSocket(configured: settings.logJournalSocket, environment: environment)
        )
        LoggingSystem.bootstrap { _ in DaemonLogHandler(settings: logSettings) }
        let logger = Logger(label: "participantd")
        if let coreDumpProblem {
            logger.warning("Core dumps could not be turned off", metadata: ["error": "\(coreDumpProblem)"])
        }
        do {
            try await Daemon.run(configuration: settings, environment: environment, logSettings: logSettings, reload: load, logger: logger)
        } catch {
            let exit = Daemon.exit(for: error)
            logger.critical("\(exit.message)", metadata: ["error": "\(error)"])
            throw ExitCode(exit.status)
        }
    }
}
