import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantWire
import ParticipantTestSupport
import Testing

/// The built `participantd`, killed with SIGKILL while events are in flight, then started again.
// A bound on each test (each takes seconds): a hang fails, naming its test, instead of holding
// the run until CI's limit. (Once, beside a valgrind run, a suite run stalled with these suites'
// daemons alive.)
@Suite(.timeLimit(.minutes(3))) struct CrashTests {
    @Test("After kill -9 every acknowledged event is delivered, none under two ClientTokens, none lost")
    func killNineWhileSending() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Slow answers keep many events in `sending`; from the 21st request on, none is answered
        // until after the kill, so that some are in flight when it comes whatever the machine's
        // load (polled, the 20th request was once seen only after every answer had come back).
        let held = ParticipantServiceStandIn.Gate()
        let seen = Locked(0)
        let standIn = try await ParticipantServiceStandIn.start { _ in
            seen.withLock { $0 += 1; return $0 } > 20 ? .wait(held, then: .accept) : .delay(.milliseconds(200), then: .accept)
        }
        defer { Task { try? await standIn.stop() } }
        let socket = directory.path + "/participantd.sock"
        let arguments = ["--socket", socket, "--database", directory.path + "/outbox.sqlite", "--endpoint", standIn.endpoint]
        // Every receipt is sent (none replaced by a newer one of its connection): what is counted is loss.
        let environment = [
            "PARTICIPANTD_RETRY_BASE_DELAY_SECONDS": "0.01", "PARTICIPANTD_RETRY_MAX_DELAY_SECONDS": "0.05",
            "PARTICIPANTD_COALESCING_NEWEST_RECEIPT_ONLY": "false",
        ]
        let client = DaemonClient(socketPath: socket, timeout: .seconds(5))
        let daemonPath = try BuiltProduct.path("participantd")

        // Given a running daemon,
        let first = try ChildProcess(daemonPath, arguments, environment: environment)
        try await eventually(timeout: .seconds(20), "first daemon ready") { (try? await client.health()) != nil }

        // when 16 clients submit 300 events over 20 connections and the daemon is killed midway,
        let acknowledged = Locked<Set<String>>([])
        let killed = Locked(false)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for index in stride(from: worker, to: 300, by: 16) {
                        let submission = EventSubmission(
                            contentType: EventContentType.messageRead.rawValue, content: receipt("message-\(index)"),
                            clientToken: "event-\(index)", connectionToken: "connection-\(index % 20)"
                        )
                        if let answer = try? await client.submit(submission) {
                            acknowledged.withLock { _ = $0.insert(answer.event.clientToken) }
                        }
                    }
                }
            }
            group.addTask {
                try? await eventually(timeout: .seconds(20)) { standIn.requests.count > 20 }
                first.kill(SIGKILL)
                killed.withLock { $0 = true }
            }
        }
        #expect(killed.withLock { $0 })
        _ = try await first.exitStatus()
        let acknowledgedTokens = acknowledged.withLock { $0 }
        let receivedBeforeRestart = standIn.requests.count
        #expect(acknowledgedTokens.count > 20)
        #expect(receivedBeforeRestart < 300, "the kill came after everything was sent; the test proves nothing")

        // then a new daemon on the same outbox delivers every acknowledged event.
        held.open()
        let second = try ChildProcess(daemonPath, arguments, environment: environment)
        defer { second.kill(SIGKILL) }
        try await eventually(timeout: .seconds(20), "second daemon ready") { (try? await client.health()) != nil }
        // Sent by the second daemon: the service also accepted the first one's held requests once
        // the gate opened, answering a connection that had died with it.
        try await eventually(timeout: .seconds(60), "every acknowledged event sent") {
            let accepted = Set(standIn.acceptedEvents.map(\.clientToken))
            guard acknowledgedTokens.isSubset(of: accepted), let listed = try? await client.list(limit: 1_000) else { return false }
            return acknowledgedTokens.isSubset(of: Set(listed.filter { $0.state == .sent }.map(\.clientToken)))
        }
        for token in acknowledgedTokens {
            let record = try await client.event(clientToken: token)
            #expect(record.state == .sent, "\(token)")
        }
        #expect(second.standardError.contains("Events interrupted by a stop were queued again"))

        // Each message went out under exactly one ClientToken, and the stand-in saw nothing invalid.
        var tokensByContent: [String: Set<String>] = [:]
        for request in standIn.requests {
            tokensByContent[request.content ?? "", default: []].insert(request.clientToken ?? "")
        }
        #expect(tokensByContent.values.allSatisfy { $0.count == 1 })
        #expect(standIn.invalidRequestCount == 0)

        // A clean stop: SIGTERM ends the daemon with status 0.
        second.kill(SIGTERM)
        #expect(try await second.exitStatus() == 0)
    }

    @Test("SIGTERM with a request stuck at the service: exit 0 within the shutdown timeout, the event queued again, sent after restart")
    func boundedShutdown() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let standIn = try await ParticipantServiceStandIn.start { _ in .delay(.seconds(60), then: .accept) }
        defer { Task { try? await standIn.stop() } }
        let socket = directory.path + "/participantd.sock"
        let arguments = ["--socket", socket, "--database", directory.path + "/outbox.sqlite", "--endpoint", standIn.endpoint]
        let environment = ["PARTICIPANTD_SHUTDOWN_TIMEOUT_SECONDS": "1", "PARTICIPANTD_UPSTREAM_REQUEST_TIMEOUT_SECONDS": "120"]
        let client = DaemonClient(socketPath: socket, timeout: .seconds(5))
        let daemonPath = try BuiltProduct.path("participantd")

        let first = try ChildProcess(daemonPath, arguments, environment: environment)
        try await eventually(timeout: .seconds(20), "daemon ready") { (try? await client.health()) != nil }
        _ = try await client.submit(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: receipt("stuck"), clientToken: "stuck", connectionToken: "c"
        ))
        try await eventually(timeout: .seconds(15), "request in flight") { standIn.requests.count == 1 }

        let clock = ContinuousClock()
        let stopStarted = clock.now
        first.kill(SIGTERM)
        #expect(try await first.exitStatus(timeout: .seconds(15)) == 0)
        #expect(clock.now - stopStarted < .seconds(8))
        #expect(first.standardError.contains("cut off"))

        // The service now answers at once; the restarted daemon sends the event, same ClientToken.
        standIn.setBehavior { _ in .accept }
        let second = try ChildProcess(daemonPath, arguments, environment: environment)
        defer { second.kill(SIGKILL) }
        try await eventually(timeout: .seconds(20), "event sent after restart") {
            (try? await client.event(clientToken: "stuck").state) == .sent
        }
        #expect(!second.standardError.contains("interrupted by a stop"))  // nothing was left `sending`
        #expect(standIn.requests.allSatisfy { $0.clientToken == "stuck" })
    }
}
