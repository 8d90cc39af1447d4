import Foundation
import GRDB
import GRDBSQLite
import ParticipantInput
@testable import ParticipantOutbox
import ParticipantWire
import Synchronization
import Testing
import ParticipantTestSupport

/// One chat's backlog must not make the outbox slower for everyone: the writer is shared, and the
/// sender leases after every accepted event. Measured in SQLite virtual-machine instructions (a
/// progress handler on the writer's connection), which are the same on every run and machine.
@Suite struct OutboxBacklogCostTests {
    let clock = ManualClock()

    /// Counts the VM instructions SQLite runs on the outbox writer's connection during `work`.
    final class InstructionCounter: Sendable {
        let count = Atomic<Int>(0)
    }

    func instructions(on outbox: Outbox, during work: () async throws -> Void) async throws -> Int {
        let counter = InstructionCounter()
        let context = UInt(bitPattern: Unmanaged.passUnretained(counter).toOpaque())
        try await outbox.writer.perform { db in
            sqlite3_progress_handler(db.sqliteConnection, 1, { context in
                Unmanaged<InstructionCounter>.fromOpaque(context!).takeUnretainedValue().count.add(1, ordering: .relaxed)
                return 0
            }, UnsafeMutableRawPointer(bitPattern: context))
        }
        try await work()
        try await outbox.writer.perform { db in sqlite3_progress_handler(db.sqliteConnection, 0, nil, nil) }
        return withExtendedLifetime(counter) { counter.count.load(ordering: .relaxed) }
    }

    func readReceipt(_ number: Int, connection: String = "busy-chat") -> ValidatedEvent {
        try! EventValidator.validate(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: receipt("m-\(number)"),
            clientToken: "receipt-\(connection)-\(number)", connectionToken: connection
        ))
    }

    @Test(
        "A lease and an accept cost the same with 500 or 4,000 events behind a connection's oldest one in flight (was linear), coalescing on or off",
        arguments: [false, true]
    )
    func leaseAndAcceptDoNotGrowWithOneConnectionsBacklog(coalescingOn: Bool) async throws {
        // On: the rules that leave a backlog of receipts possible (with newestReceiptOnly a
        // connection's receipts never pile up: each new one replaces the waiting ones).
        var rules = CoalescingRules.perMessage
        if !coalescingOn {
            rules.receipts = false
            rules.typingInterval = .zero
        }
        try await withTestOutbox(clock: clock, coalescing: rules) { outbox in
            // The chat's oldest event is in flight (an attempt, or the probe of an outage): its
            // later events are due but must wait behind it.
            _ = try await outbox.submit(readReceipt(0))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 16).count == 1)
            // Another chat waits too, with its oldest event due: it must still be leased.
            var costs: [Int] = []
            var submitted = 1
            for backlog in [500, 4_000] {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for number in submitted..<backlog {
                        group.addTask { _ = try await outbox.submit(readReceipt(number)) }
                    }
                    try await group.waitForAll()
                }
                submitted = backlog
                var leased: [StoredEvent] = []
                let cost = try await instructions(on: outbox) {
                    leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 16)
                    _ = try await outbox.submit(readReceipt(backlog))
                }
                submitted += 1
                #expect(leased.isEmpty, "the chat's later events wait behind its oldest")
                costs.append(cost)
            }
            // Old: a full search of every due event at each lease (about 8 times the instructions).
            #expect(costs[1] < costs[0] * 3 / 2, "instructions for one lease and one accept: \(costs)")

            // Per-connection order and fairness still hold: another chat's event is leased.
            _ = try await outbox.submit(readReceipt(1, connection: "quiet-chat"))
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 16)
            #expect(leased.map(\.clientToken) == ["receipt-quiet-chat-1"])
        }
    }
}
