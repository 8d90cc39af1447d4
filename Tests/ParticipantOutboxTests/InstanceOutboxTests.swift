import GRDB
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantTestSupport
import ParticipantWire
import Testing

/// Instances in the outbox: each sender leases its own instance's events, and events from before
/// instances existed belong to `default`.
@Suite struct InstanceOutboxTests {
    func event(_ token: String, connection: String = "conn", instance: String = InstanceName.defaultName) throws -> ValidatedEvent {
        // Read receipts of distinct messages: none coalesces with another.
        var event = try EventValidator.validate(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: receipt(token), clientToken: token, connectionToken: connection
        ))
        event.instance = instance
        return event
    }

    @Test("Each instance's sender leases only its own events, and one connection token is two connections in two instances")
    func leasePerInstance() async throws {
        try await withTestOutbox(clock: ManualClock()) { outbox in
            _ = try await outbox.submit(try event("a1"))
            _ = try await outbox.submit(try event("b1", instance: "b"))
            _ = try await outbox.submit(try event("b2", instance: "b"))
            // Same token, other instance: not ordered behind the default instance's event.
            #expect(ConnectionHash.of("conn", instance: InstanceName.defaultName) != ConnectionHash.of("conn", instance: "b"))
            let forB = try await outbox.leaseDue(instance: "b", limit: 10)
            #expect(forB.map(\.clientToken) == ["b1"], "one per connection, b2 waits behind b1")
            let forDefault = try await outbox.leaseDue(instance: "default", limit: 10)
            #expect(forDefault.map(\.clientToken) == ["a1"])
            #expect(try await outbox.leaseDue(instance: "c", limit: 10).isEmpty)
        }
    }

    @Test("Events stored before instances existed belong to default, and keep their connection")
    func migrationKeepsOldEvents() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let queue = try outboxFile(migratedUpTo: "v5: short connection hashes", in: directory)
        try await queue.write { db in
            try db.execute(sql: """
                INSERT INTO event (clientToken, contentType, content, connectionToken, connectionHash, state, acceptedAt, updatedAt, nextAttemptAt, deadline, priority)
                VALUES ('old-1', 'application/vnd.amazonaws.connect.event.message.read', ?, 'conn', ?, 'queued', 0, 0, 0, 9999999999999, 0)
                """, arguments: [receipt("old-1"), ConnectionHash.of("conn", instance: InstanceName.defaultName)])
        }
        try queue.close()
        try await withTestOutbox(clock: ManualClock(), storage: .file(in: directory)) { outbox in
            #expect(try await outbox.event(clientToken: "old-1")?.instance == "default")
            // A resubmission now is the same event.
            if case .duplicate = try await outbox.submit(try event("old-1")) {} else { Issue.record("not a duplicate") }
            #expect(try await outbox.leaseDue(instance: "default", limit: 10).map(\.clientToken) == ["old-1"])
        }
    }

    @Test("Counts from the indexes agree with the table, state by state and instance by instance, in every state; finished items are counted and deleted in every instance")
    func countsFromIndexesAgreeWithTheTable() async throws {
        let clock = ManualClock()
        var limits = OutboxLimits()
        limits.retention = .seconds(3_600)
        try await withTestOutbox(clock: clock, limits: limits) { outbox in
            // Two instances, every state: queued, sending, sent, failed, expired, held, superseded.
            for instance in [InstanceName.defaultName, "b"] {
                for number in 0..<6 {
                    _ = try await outbox.submit(try event("\(instance)-\(number)", connection: "conn-\(instance)-\(number)", instance: instance))
                }
                let leased = try await outbox.leaseDue(instance: instance, limit: 4)
                #expect(leased.count == 4)
                try await outbox.record(.sent(id: "i", absoluteTime: "t"), for: leased[0])
                try await outbox.record(.failed(ErrorBody(code: "ValidationException", message: "no")), for: leased[1])
                try await outbox.record(.expired(ErrorBody(code: "DeadlinePassed", message: "late")), for: leased[2])
                _ = try await outbox.hold(clientToken: "\(instance)-4")
            }
            // Superseded on arrival: a delivered receipt of a message already read.
            var delivered = try EventValidator.validate(EventSubmission(
                contentType: EventContentType.messageDelivered.rawValue, content: receipt("b-5"), clientToken: "late-delivered", connectionToken: "conn-b-5"
            ))
            delivered.instance = "b"
            guard case .created(let stored) = try await outbox.submit(delivered), stored.state == .superseded else {
                Issue.record("the delivered receipt was not superseded on arrival"); return
            }
            let table = try await outbox.writer.perform { db in
                try Row.fetchAll(db, sql: "SELECT instance, state, COUNT(*) AS n FROM event GROUP BY instance, state")
                    .map { (instance: $0["instance"] as String, state: EventState(rawValue: $0["state"])!, n: $0["n"] as Int) }
            }
            var expected: [String: [EventState: Int]] = [:]
            for row in table {
                expected[row.instance, default: Outbox.zeroCounts][row.state] = row.n
            }
            #expect(expected[InstanceName.defaultName] == [.queued: 1, .sending: 1, .sent: 1, .failed: 1, .expired: 1, .held: 1, .superseded: 0])
            #expect(expected["b"]?[.superseded] == 1)
            #expect(try await outbox.countsByInstance() == expected)
            let totals = Outbox.totals(expected)
            #expect(try await outbox.countsByState() == totals)
            let gauges = try await outbox.gaugeCounts()
            #expect(gauges.byState == totals)
            #expect(gauges.waitingByInstance == [InstanceName.defaultName: 2, "b": 2])
            // event_finished is read instance by instance: every instance's part is reached.
            #expect(try await outbox.sentCount(within: .seconds(60)) == 2)
            #expect(try await outbox.sentCount(within: .seconds(60), instance: "b") == 1)
            #expect(try await outbox.peerCounts(sentWithin: .seconds(60)).values.map(\.sent).reduce(0, +) == 2)
            clock.advance(by: .seconds(3_601))
            #expect(try await outbox.deleteExpiredHistory(limit: 2) == 2, "a limit counts across instances")
            #expect(try await outbox.deleteExpiredHistory() == 5, "the finished items of both instances: sent, failed, expired, and b's superseded one")
            let left = try await outbox.countsByState()
            #expect(left[.sent] == 0 && left[.failed] == 0 && left[.expired] == 0 && left[.superseded] == 0)
            #expect(left[.queued] == 2 && left[.sending] == 2 && left[.held] == 2)
        }
    }
}
