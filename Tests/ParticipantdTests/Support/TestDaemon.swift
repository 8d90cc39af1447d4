import Foundation
import ParticipantTestSupport
import InMemoryLogging
import Logging
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import NIOSSL
import ParticipantWire
import Testing

/// The real daemon, in this process, on a temporary socket and database, delivering to a stand-in.
struct TestDaemon {
    let directory: TemporaryDirectory
    let standIn: ParticipantServiceStandIn
    let configuration: DaemonConfiguration
    let logs: InMemoryLogHandler
    var client: DaemonClient { DaemonClient(socketPath: configuration.socketPath, timeout: .seconds(10)) }

    /// `aws.waitForDeliverySeconds` for tests of the SDK route's answer (the service's Id), not of
    /// the wait's limit: the wait ends with the outcome, so a long limit costs nothing when the
    /// stand-in answers at once, and a machine running the whole suite on two cores once took
    /// more than the default 2 s to deliver.
    static let patientDeliveryWait: Duration = .seconds(30)

    /// Fast retries so that tests of retry behaviour take milliseconds.
    static func testConfiguration(directory: TemporaryDirectory, endpoint: String) -> DaemonConfiguration {
        var configuration = DaemonConfiguration()
        configuration.socketPath = directory.path + "/participantd.sock"
        configuration.databasePath = directory.path + "/outbox.sqlite"
        configuration.endpoint = endpoint
        configuration.sender.retry = RetryPolicy(baseDelay: .milliseconds(10), maxDelay: .milliseconds(50))
        // Long enough for a request to the stand-in while the whole suite loads the machine (2 s
        // was not, once): tests of the timeout set their own.
        configuration.requestTimeout = .seconds(5)
        // Pacing off unless a test is about pacing: it would only slow the others down.
        configuration.sender.quota = QuotaPacer.Configuration(rate: 0, burst: 1)
        // Each receipt sent, unless a test is about one receipt replacing another.
        configuration.coalescing = .perMessage
        configuration.logLevel = .debug
        return configuration
    }

    /// Runs `body` with a started daemon and stand-in, and stops both afterwards.
    static func with<T>(
        behavior: @escaping @Sendable (ParticipantServiceStandIn.ReceivedRequest) -> ParticipantServiceStandIn.Behavior = { _ in .accept },
        tls: TLSConfiguration? = nil,
        environment: [String: String] = [:],
        configure: (inout DaemonConfiguration) -> Void = { _ in },
        _ body: (TestDaemon) async throws -> T
    ) async throws -> T {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let standIn = try await ParticipantServiceStandIn.start(tls: tls, behavior: behavior)
        var configuration = testConfiguration(directory: directory, endpoint: standIn.endpoint)
        configure(&configuration)
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "participantd-test", factory: { _ in logs })
        logger.logLevel = configuration.logLevel
        let daemon = TestDaemon(directory: directory, standIn: standIn, configuration: configuration, logs: logs)

        let daemonTask = await InProcessDaemon.start(configuration: configuration, environment: environment, logger: logger)
        let phase = Locked("in its body")
        let testEnded = Self.watchdog(phase: phase, logs: logs)
        defer { testEnded.signal() }
        do {
            try await daemon.waitUntilReady()
            let result = try await body(daemon)
            phase.withLock { $0 = "stopping its daemon" }
            await daemonTask.stop()
            try await standIn.stop()
            return result
        } catch {
            phase.withLock { $0 = "stopping its daemon after an error: \(error)" }
            await daemonTask.stop()
            try? await standIn.stop()
            throw error
        }
    }

    /// How long a test with a daemon may run before it is named on standard error (the longest
    /// takes about a minute). A test that hangs would otherwise show only as a run that does not
    /// end, stopped by scripts/test's watchdog without saying which test it was.
    static let namedAfter: Duration = .seconds(300)

    /// Names the running test, what it is doing (`phase`) and the daemon's last log lines once
    /// ``namedAfter`` has passed, unless the returned semaphore is signalled first (when the test
    /// ends). On a thread of its own, not a task: a run whose concurrency pool is blocked (every
    /// thread of it waiting in a call) runs no task, and that is a hang to name too.
    private static func watchdog(phase: Locked<String>, logs: InMemoryLogHandler) -> DispatchSemaphore {
        let test = Test.current.map { "\($0.displayName ?? $0.name) (\($0.sourceLocation))" } ?? "a test"
        let ended = DispatchSemaphore(value: 0)
        Thread {
            let seconds = Int(namedAfter.components.seconds)
            guard ended.wait(timeout: .now() + .seconds(seconds)) == .timedOut else { return }
            let tail = logs.entries.suffix(40).map { "  \($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n")
            let report = "TestDaemon: \(test) has run \(namedAfter) and is still \(phase.value). The daemon's last log lines:\n\(tail)\n"
            FileHandle.standardError.write(Data(report.utf8))
        }.start()
        return ended
    }

    func waitUntilReady() async throws {
        try await eventually(timeout: .seconds(30)) {
            (try? await client.health()) != nil
        }
    }

    /// Polls the event until `predicate` holds.
    func waitForEvent(_ clientToken: String, timeout: Duration = .seconds(30), until predicate: (EventRecord) -> Bool) async throws -> EventRecord {
        var last: EventRecord?
        try await eventually(timeout: timeout) {
            last = try? await client.event(clientToken: clientToken)
            return last.map(predicate) ?? false
        }
        return last!
    }

    /// Every line the daemon logged, message and metadata, as text.
    var logText: String {
        logs.entries.map { "\($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n")
    }

    /// The port of `aws.listen` (configured with port 0), as the ready line names it.
    func awsListenPort() async throws -> String {
        var port: String?
        try await eventually(timeout: .seconds(10), "the ready line names the TCP port") {
            let line = logs.entries.first { $0.message.description == "participantd ready" }
            port = line?.metadata["aws.listen"].map { "\($0)".split(separator: ":").last.map(String.init) } ?? nil
            return port != nil
        }
        return port!
    }
}

