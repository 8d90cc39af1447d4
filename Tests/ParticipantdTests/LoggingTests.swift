import Foundation
import Logging
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantWire
import Synchronization
import ParticipantTestSupport
import Testing

@Suite struct LoggingTests {
    @Test("journal: syslog priority prefix, message, logfmt metadata quoted where needed, one line")
    func journalFormat() {
        let line = DaemonLogHandler.format(
            level: .warning, message: "Event failed\nsecond line",
            metadata: ["error.message": "token \"x\" expired", "http.status": "403", "empty": ""],
            as: .journal, at: Date(timeIntervalSince1970: 0)
        )
        #expect(line == "<4>Event failed second line empty=\"\" error.message=\"token \\\"x\\\" expired\" http.status=403\n")
        // Quoted only for what logfmt needs; other text, non-ASCII included, goes as it is.
        #expect(DaemonLogHandler.logfmtValue("héllo→ok") == "héllo→ok")
        #expect(DaemonLogHandler.logfmtValue("a=b") == "\"a=b\"")
        #expect(DaemonLogHandler.logfmtValue("tab\there\u{7F}") == "\"tab\\there\\u007f\"")
        #expect(DaemonLogHandler.singleLine("a\r\nb\rc\nd") == "a b c d")
        #expect(DaemonLogHandler.singleLine("é\u{2028}x") == "é\u{2028}x")
        let priorities = Logger.Level.allCases.map { DaemonLogHandler.syslogPriority($0) }
        #expect(priorities == [7, 7, 6, 5, 4, 3, 2])
    }

    @Test("json: one object per line with time, level, message and the metadata as strings")
    func jsonFormat() throws {
        let line = DaemonLogHandler.format(
            level: .info, message: "Event sent", metadata: ["event.id": "abc", "quote": "a \"b\"\n"],
            as: .json, at: Date(timeIntervalSince1970: 1)
        )
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object == ["time": "1970-01-01T00:00:01.000Z", "level": "info", "message": "Event sent", "event.id": "abc", "quote": "a \"b\"\n"])
    }

    @Test("auto is journal only when standard error is the stream JOURNAL_STREAM names")
    func autoFormat() {
        #expect(LogFormat.auto.resolved(environment: [:]) == .text)
        #expect(LogFormat.auto.resolved(environment: ["JOURNAL_STREAM": "1:1"]) == .text)
        var status = stat()
        fstat(STDERR_FILENO, &status)
        #expect(LogFormat.auto.resolved(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino)"]) == .journal)
        #expect(LogFormat.json.resolved(environment: [:]) == .json)
    }

    @Test("A logger given a level of its own keeps it; the others follow the daemon's level, also after a reload")
    func loggerLevelSetter() {
        let lines = Mutex<[String]>([])
        let settings = LogSettings(level: .info, format: .text)
        let factory: @Sendable (String) -> any LogHandler = { _ in DaemonLogHandler(settings: settings, write: { line in lines.withLock { $0.append(line) } }) }
        var verbose = Logger(label: "verbose", factory: factory)
        let plain = Logger(label: "plain", factory: factory)
        verbose.logLevel = .debug
        #expect(verbose.logLevel == .debug)
        #expect(plain.logLevel == .info)
        verbose.debug("shown")
        plain.debug("hidden")
        #expect(lines.withLock { $0 }.map { $0.contains("shown") } == [true])
        settings.level = .warning
        #expect(plain.logLevel == .warning)
        #expect(verbose.logLevel == .debug)
    }

    @Test("Repeats: the first 3 of a kind in a window are logged, the rest summarised in one line")
    func repeatSummary() {
        let lines = Mutex<[String]>([])
        let settings = LogSettings(level: .trace, format: .journal)
        let logger = Logger(label: "test") { _ in DaemonLogHandler(settings: settings, write: { line in lines.withLock { $0.append(line) } }) }
        let start = ContinuousClock.now
        let elapsed = Mutex<Duration>(.zero)
        let summary = RepeatSummary(window: .seconds(60), shown: 3, now: { start + elapsed.withLock { $0 } })

        for index in 0..<1_000 {
            summary.log(logger, .warning, "Event failed", key: "failed Throttled", metadata: ["error.code": "Throttled", "event.client_token": "t\(index)"])
        }
        summary.log(logger, .warning, "Event failed", key: "failed Other", metadata: ["error.code": "Other"])
        #expect(lines.withLock { $0.count } == 4)
        summary.flush(logger)
        #expect(lines.withLock { $0.count } == 4, "nothing is summarised before the window ends")

        elapsed.withLock { $0 = .seconds(61) }
        summary.flush(logger)
        let all = lines.withLock { $0 }
        #expect(all.count == 5, "\(all)")
        let last = all.last ?? ""
        #expect(last.hasPrefix("<4>Event failed (repeated: 997 more"), "\(last)")
        #expect(last.contains("summary.suppressed=997") && last.contains("summary.total=1000") && last.contains("error.code=Throttled"))
        #expect(!last.contains("event.client_token"), "a summary names no single event")
    }

    @Test("SIGHUP: reloadable settings change and the log says so; others are named as needing a restart; a bad file changes nothing")
    func reloadOnHangup() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let secret = "SECRET-connection-token-\(UUID().uuidString)"
        // Refused for good: a failure, a connection block, and at trace level every detail of it.
        let standIn = try await ParticipantServiceStandIn.start { _ in .error(status: 403, code: "AccessDeniedException", message: "denied") }
        defer { Task { try? await standIn.stop() } }
        let configPath = directory.path + "/participantd.yaml"
        let base = """
            socket: \(directory.path)/participantd.sock
            database: \(directory.path)/outbox.sqlite
            endpoint: \(standIn.endpoint)
            quota:
              requestsPerSecond: 10
            sender:
              maxInFlight: 16
            log:
              level: trace
              format: journal

            """
        try base.write(toFile: configPath, atomically: true, encoding: .utf8)
        let daemon = try ChildProcess(try BuiltProduct.path("participantd"), ["--config", configPath])
        defer { daemon.kill(SIGKILL) }
        let client = DaemonClient(socketPath: directory.path + "/participantd.sock", timeout: .seconds(5))
        try await eventually(timeout: .seconds(20), "daemon ready") { (try? await client.health()) != nil }

        _ = try await client.submit(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: #"{"messageId":"m-1"}"#,
            clientToken: "log-1", connectionToken: secret
        ))
        try await eventually(timeout: .seconds(10), "event failed") { (try? await client.event(clientToken: "log-1"))?.state == .failed }

        try base.replacingOccurrences(of: "requestsPerSecond: 10", with: "requestsPerSecond: 4")
            .replacingOccurrences(of: "maxInFlight: 16", with: "maxInFlight: 2")
            .replacingOccurrences(of: "level: trace", with: "level: notice")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        daemon.kill(SIGHUP)
        try await eventually(timeout: .seconds(10), "reload logged") { daemon.standardError.contains("Configuration reloaded") }
        let reloaded = try #require(daemon.standardError.split(separator: "\n").first { $0.contains("Configuration reloaded") })
        #expect(reloaded.hasPrefix("<5>"))
        #expect(reloaded.contains(#"quota.requestsPerSecond="10.0 -> 4.0""#) && reloaded.contains(#"log.level="trace -> notice""#), "\(reloaded)")
        try await eventually(timeout: .seconds(5), "restart warning") { daemon.standardError.contains("reload.restart_needed=sender.maxInFlight") }

        // A broken file: refused as a whole, the daemon keeps running on its settings.
        try "quota:\n  requestsPerSecond: fast\n".write(toFile: configPath, atomically: true, encoding: .utf8)
        daemon.kill(SIGHUP)
        try await eventually(timeout: .seconds(10), "refusal logged") { daemon.standardError.contains("Configuration not reloaded") }
        #expect(daemon.standardError.contains("quota.requestsPerSecond: must be a number"))
        _ = try await client.health()
        // At notice, info lines (such as "Event accepted") are no longer written.
        _ = try await client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "log-2", connectionToken: "other"))
        daemon.kill(SIGTERM)
        #expect(try await daemon.exitStatus() == 0)
        let output = daemon.standardError + daemon.standardOutput
        let lines = output.split(separator: "\n")
        #expect(lines.contains { $0.contains("Event accepted") && $0.contains("event.client_token=log-1") })
        #expect(!lines.contains { $0.contains("Event accepted") && $0.contains("event.client_token=log-2") })
        // The connection token, however much is logged, never appears.
        #expect(!output.contains(secret))
        #expect(!output.contains("SECRET-connection-token"))
    }
}
