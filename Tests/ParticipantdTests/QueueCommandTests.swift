import Foundation
import GRDB
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantServiceStandIn
import ParticipantWire
import ParticipantTestSupport
import Testing

/// participantctl's queue commands against a running daemon, over the socket.
@Suite struct QueueCommandTests {
    func participantctl(_ daemon: TestDaemon, _ arguments: [String]) async throws -> (Int32, String, String) {
        try await ChildProcess.run(try BuiltProduct.path("participantctl"), arguments, environment: ["PARTICIPANTD_SOCKET": daemon.configuration.socketPath])
    }

    func decode<T: Decodable>(_ type: T.Type, _ output: String) throws -> T {
        try WireCoding.decoder().decode(T.self, from: Data(output.utf8))
    }

    @Test("list, show, retry, retry --all-failed, hold, release, delete, flush, stats, end to end")
    func queueCommands() async throws {
        let refuse = Locked(true)
        // slow-a is held at the service until the test has held slow-b and tried to hold slow-a.
        let slowA = ParticipantServiceStandIn.Gate()
        defer { slowA.open() }
        let behavior: @Sendable (ParticipantServiceStandIn.ReceivedRequest) -> ParticipantServiceStandIn.Behavior = { request in
            switch request.bearer {
            case "secret-failing-connection":
                refuse.withLock { $0 } ? .error(status: 400, code: "ValidationException", message: "refused for the test") : .accept
            case "secret-slow-connection" where request.clientToken == "slow-a":
                .wait(slowA, then: .accept)
            default:
                .accept
            }
        }
        try await TestDaemon.with(behavior: behavior, configure: { $0.requestTimeout = .seconds(20) }) { daemon in
            let client = daemon.client
            for token in ["f1", "f2", "f3"] {
                _ = try await client.submit(EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt(token), clientToken: token, connectionToken: "secret-failing-connection"))
            }
            for token in ["f1", "f2", "f3"] { _ = try await daemon.waitForEvent(token, timeout: .seconds(10)) { $0.state == .failed } }

            // list: a table, and JSON lines with the connection's hash, never the token.
            let (listStatus, table, _) = try await participantctl(daemon, ["list", "--state", "failed"])
            #expect(listStatus == 0)
            #expect(table.hasPrefix("CLIENT TOKEN") && table.contains("f1") && table.contains("ValidationException"), "\(table)")
            let (_, lines, _) = try await participantctl(daemon, ["list", "--state", "failed", "--json", "--limit", "2"])
            let listed = try lines.split(separator: "\n").map { try decode(EventRecord.self, String($0)) }
            #expect(listed.map(\.clientToken) == ["f3", "f2"], "finished events newest first")
            let hash = try #require(listed.first?.connectionHash)
            #expect(hash.count == 16)
            let (_, byHash, _) = try await participantctl(daemon, ["list", "--connection-token-hash", String(hash.prefix(6)), "--json"])
            #expect(byHash.split(separator: "\n").count == 3)
            #expect(!(table + lines + byHash).contains("secret-"), "a connection token was printed")

            // show
            let (showStatus, shown, _) = try await participantctl(daemon, ["show", "f1"])
            #expect(showStatus == 0)
            #expect(try decode(EventRecord.self, shown).state == .failed)
            #expect(!shown.contains("secret-"))

            // retry: the failed items' connection token was erased when they failed, so a retry
            // names one; sent with the same ClientToken, a new deadline.
            refuse.withLock { $0 = false }
            let (erasedStatus, _, erased) = try await participantctl(daemon, ["retry", "f1"])
            #expect(erasedStatus != 0)
            #expect(erased.contains("InvalidState") && erased.contains("--connection-token"), "\(erased)")
            let (_, retriedAll, _) = try await participantctl(daemon, ["retry", "--all-failed"])
            #expect(try decode(QueueChange.self, retriedAll).changed == 0, "no failed item can be sent without a token")
            for token in ["f1", "f2", "f3"] {
                let (retryStatus, retried, retryErrors) = try await participantctl(daemon, ["retry", token, "--connection-token", "secret-failing-connection"])
                #expect(retryStatus == 0, "\(retryErrors)")
                #expect(try decode(QueueChange.self, retried).event?.state == .queued)
                #expect(!retried.contains("secret-"))
                _ = try await daemon.waitForEvent(token) { $0.state == .sent }
            }
            // A sent item keeps no content, and still tells a resubmission apart from another item.
            let sentRecord = try await client.event(clientToken: "f1")
            #expect(sentRecord.content == nil)
            let again = try await client.submit(EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("f1"), clientToken: "f1", connectionToken: "secret-failing-connection"))
            #expect(!again.created && again.event.state == .sent)
            do {
                _ = try await client.submit(EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("other"), clientToken: "f1", connectionToken: "secret-failing-connection"))
                Issue.record("another content under a sent item's ClientToken was accepted")
            } catch let error as DaemonClientError {
                guard case .api(let status, let body) = error else { Issue.record("\(error)"); return }
                #expect(status == 409 && body.message.contains("different content"), "\(body)")
            }
            // Retrying a sent event is refused, naming the state and the rule.
            let (wrongStatus, _, wrong) = try await participantctl(daemon, ["retry", "f1"])
            #expect(wrongStatus != 0)
            #expect(wrong.contains("InvalidState") && wrong.contains("event f1 is sent: only a failed or expired event can be retried"), "\(wrong)")

            // hold: slow-b waits behind slow-a (in flight until the gate opens); held, it is not sent after slow-a.
            _ = try await client.submit(EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("a"), clientToken: "slow-a", connectionToken: "secret-slow-connection"))
            _ = try await daemon.waitForEvent("slow-a") { $0.state == .sending }
            _ = try await client.submit(EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("b"), clientToken: "slow-b", connectionToken: "secret-slow-connection"))
            let (holdStatus, held, holdErrors) = try await participantctl(daemon, ["hold", "slow-b"])
            #expect(holdStatus == 0, "\(holdErrors)")
            #expect(try decode(QueueChange.self, held).event?.state == .held)
            let (_, _, inFlight) = try await participantctl(daemon, ["hold", "slow-a"])
            #expect(inFlight.contains("a request for it is in flight"), "\(inFlight)")
            slowA.open()
            _ = try await daemon.waitForEvent("slow-a") { $0.state == .sent }
            // Nothing waits (a held event does not) and nothing is in flight: slow-b cannot be sent.
            let idle = try await client.stats()
            #expect(idle.counts["queued"] == 0 && idle.counts["sending"] == 0 && idle.requestsInFlight == 0)
            #expect(try await client.event(clientToken: "slow-b").state == .held)
            #expect(!daemon.standIn.requests.contains { $0.clientToken == "slow-b" })
            let (_, heldList, _) = try await participantctl(daemon, ["list", "--state", "held", "--json"])
            #expect(heldList.contains("slow-b"))
            let (releaseStatus, _, _) = try await participantctl(daemon, ["release", "slow-b"])
            #expect(releaseStatus == 0)
            _ = try await daemon.waitForEvent("slow-b") { $0.state == .sent }

            // delete: gone, and its ClientToken free again.
            let (deleteStatus, deleted, _) = try await participantctl(daemon, ["delete", "f2"])
            #expect(deleteStatus == 0)
            #expect(try decode(QueueChange.self, deleted).action == "deleted")
            let (goneStatus, _, gone) = try await participantctl(daemon, ["show", "f2"])
            #expect(goneStatus != 0 && gone.contains("EventNotFound"))

            // flush and stats.
            let (flushStatus, flushed, _) = try await participantctl(daemon, ["flush"])
            #expect(flushStatus == 0)
            #expect(try decode(QueueChange.self, flushed).action == "flushed")
            let (statsStatus, statsOutput, _) = try await participantctl(daemon, ["stats"])
            #expect(statsStatus == 0)
            let stats = try decode(QueueStats.self, statsOutput)
            #expect(stats.counts["sent"] == 4 && stats.counts["failed"] == 0 && stats.counts["held"] == 0, "\(stats.counts)")
            #expect(stats.sentLastMinute == 4)
            #expect(stats.oldestWaitingAcceptedAt == nil)

            // Bad input: a clear error naming the option and the rule.
            let (badStatus, _, bad) = try await participantctl(daemon, ["list", "--state", "stuck"])
            #expect(badStatus != 0 && bad.contains("--state must be one of"), "\(bad)")
            let (_, _, both) = try await participantctl(daemon, ["retry", "f1", "--all-failed"])
            #expect(both.contains("either a ClientToken or --all-failed"))
        }
    }

    @Test("flush makes an event waiting for its retry due now; a held event does not expire or block its connection")
    func flushAndHoldInTheOutbox() async throws {
        let clock = ManualClock()
        try await withTestOutbox(clock: clock) { outbox in
            func submit(_ token: String, connection: String) async throws {
                _ = try await outbox.submit(try EventValidator.validate(EventSubmission(
                    contentType: EventContentType.messageRead.rawValue, content: receipt(token), clientToken: token, connectionToken: connection
                )))
            }
            try await submit("a", connection: "c1")
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1)
            try await outbox.record(.retry(at: clock.date.addingTimeInterval(600), error: ErrorBody(code: "Throttled", message: "")), for: try #require(leased.first))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).isEmpty)
            #expect(try await outbox.flush() == 1)
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).map(\.clientToken) == ["a"])

            // b held: c (same connection, later) goes anyway; past its deadline b stays held.
            try await submit("b", connection: "c2")
            try await submit("c", connection: "c2")
            #expect(try await outbox.hold(clientToken: "b").state == .held)
            #expect(outbox.waitingCount == 2)
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 5).map(\.clientToken) == ["c"])
            clock.advance(by: .seconds(172800))
            #expect(try await outbox.expireOverdue(instance: InstanceName.defaultName).isEmpty)
            #expect(try await outbox.event(clientToken: "b")?.state == .held)
            // Released past its deadline: it expires at the next round instead of going late.
            _ = try await outbox.release(clientToken: "b")
            #expect(try await outbox.expireOverdue(instance: InstanceName.defaultName).map(\.clientToken) == ["b"])
            await #expect(throws: QueueCommandError.self) { try await outbox.release(clientToken: "b") }
            await #expect(throws: QueueCommandError.notFound(clientToken: "nope")) { try await outbox.delete(clientToken: "nope") }
        }
    }

    @Test("participantctl backup copies the outbox while submissions go on: a private, checked SQLite file holding what was acknowledged, which a new daemon starts from")
    func backupAndRestore() async throws {
        let backupDirectory = try TemporaryDirectory()
        defer { backupDirectory.remove() }
        let backup = backupDirectory.path + "/outbox-backup.sqlite"
        // Held at the service: the events stay queued, and are what the restored daemon sends.
        let gate = ParticipantServiceStandIn.Gate()
        defer { gate.open() }
        let acknowledgedBefore = try await TestDaemon.with(behavior: { _ in .wait(gate, then: .accept) }) { daemon in
            for index in 0..<200 {
                _ = try await daemon.client.submit(EventSubmission(
                    contentType: EventContentType.messageRead.rawValue, content: receipt("m\(index)"), clientToken: "b\(index)", connectionToken: "chat-\(index % 7)"
                ))
            }
            // Submissions go on during the backup.
            let load = Task {
                for index in 200..<400 {
                    _ = try? await daemon.client.submit(EventSubmission(
                        contentType: EventContentType.messageRead.rawValue, content: receipt("m\(index)"), clientToken: "b\(index)", connectionToken: "chat-\(index % 7)"
                    ))
                }
            }
            let (status, output, errors) = try await participantctl(daemon, ["backup", backup])
            await load.value
            #expect(status == 0, "\(errors)")
            #expect(output.contains("\"bytes\""), "\(output)")
            // The same name again is refused: nothing is overwritten.
            let (again, _, againErrors) = try await participantctl(daemon, ["backup", backup])
            #expect(again != 0 && againErrors.contains("it exists"), "\(againErrors)")
            // No copy is left beside the database.
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: daemon.directory.path).filter { $0.contains(".backup-") }
            #expect(leftovers.isEmpty, "\(leftovers)")
            return 200
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: backup)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: backup + ".partial"))
        let copy = try DatabaseQueue(path: backup)
        let (check, tokens) = try await copy.read { db in
            (try String.fetchAll(db, sql: "PRAGMA integrity_check"), Set(try String.fetchAll(db, sql: "SELECT clientToken FROM event")))
        }
        try copy.close()
        #expect(check == ["ok"])
        #expect(Set((0..<acknowledgedBefore).map { "b\($0)" }).isSubset(of: tokens), "every event acknowledged before the backup is in it")

        // Restore: a new daemon on the copy sends its events.
        try await TestDaemon.with(configure: { configuration in
            try? FileManager.default.removeItem(atPath: configuration.databasePath)
            try? FileManager.default.copyItem(atPath: backup, toPath: configuration.databasePath)
        }) { daemon in
            try await eventually(timeout: .seconds(30), "the restored events sent") {
                let sent = Set(try await daemon.client.list(state: .sent, limit: 10_000).map(\.clientToken))
                return tokens.isSubset(of: sent)
            }
        }
    }
}
