import ParticipantInput
import Foundation
import GRDB
import Logging
@testable import ParticipantOutbox
import ParticipantWire
import Synchronization
import Testing
import ParticipantTestSupport

@Suite struct OutboxTests {
    let clock = ManualClock()

    func withOutbox<T>(directory: TemporaryDirectory? = nil, _ body: (Outbox) async throws -> T) async throws -> T {
        try await withTestOutbox(clock: clock, storage: directory.map { .file(in: $0) } ?? .memory, body)
    }

    func event(_ type: EventContentType = .typing, token: String? = nil, connection: String = "conn", content: String? = nil) -> ValidatedEvent {
        try! EventValidator.validate(EventSubmission(contentType: type.rawValue, content: content ?? type.sampleContent(), clientToken: token, connectionToken: connection))
    }

    @Test func submitStoresOnceAndComparesParameters() async throws {
        try await withOutbox { outbox in
            let first = try await outbox.submit(event(.messageRead, token: "t1", content: receipt("m")))
            guard case .created(let stored) = first else { Issue.record("not created"); return }
            #expect(stored.state == .queued)
            #expect(stored.deadline == clock.date.addingTimeInterval(86_400))

            #expect(try await outbox.submit(event(.messageRead, token: "t1", content: receipt("m"))) == .duplicate(stored))
            for other in [event(.messageDelivered, token: "t1", content: receipt("m")),
                          event(.messageRead, token: "t1", content: receipt("n")),
                          event(.messageRead, token: "t1", connection: "other", content: receipt("m"))] {
                guard case .mismatch = try await outbox.submit(other) else { Issue.record("expected a mismatch"); return }
            }
            #expect(try await outbox.event(clientToken: "t1") == stored)
            #expect(try await outbox.countsByState()[.queued] == 1)
        }
    }

    @Test("Schema v8 upgrades a v7 file: event_finished is rebuilt by comparisons, and the finished events stored before are still counted and expire")
    func finishedIndexUpgradedFromVersion7() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var limits = OutboxLimits()
        limits.retention = .seconds(3_600)
        try await withTestOutbox(clock: clock, storage: .file(in: directory), limits: limits) { outbox in
            _ = try await outbox.submit(event(.messageRead, token: "done", connection: "a", content: receipt("m")))
            _ = try await outbox.submit(event(.messageRead, token: "waiting", connection: "b", content: receipt("n")))
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10)
            try await outbox.record(.sent(id: "i", absoluteTime: "t"), for: leased.first { $0.clientToken == "done" }!)
        }
        // As version 7 left the file.
        let (status, _, errors) = try await ChildProcess.run("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("DROP INDEX event_finished")
            db.execute("CREATE INDEX event_finished ON event(updatedAt) WHERE state IN ('sent', 'failed', 'expired', 'superseded')")
            db.execute("DELETE FROM grdb_migrations WHERE identifier = 'v8: finished events by comparisons'")
            db.commit()
            """, directory.path + "/outbox.sqlite"])
        #expect(status == 0, "\(errors)")
        try await withTestOutbox(clock: clock, storage: .file(in: directory), limits: limits) { outbox in
            let definition = try await outbox.writer.perform { db in
                try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'event_finished'")
            }
            #expect(definition?.contains("state = 'sent' OR state = 'failed'") == true, "\(definition ?? "none")")
            #expect(try await outbox.sentCount(within: .seconds(60)) == 1)
            clock.advance(by: .seconds(3601))
            #expect(try await outbox.deleteExpiredHistory() == 1)
            #expect(try await outbox.event(clientToken: "done") == nil)
            #expect(try await outbox.event(clientToken: "waiting")?.state == .queued, "a lease left by the stop is queued again")
        }
    }

    @Test("No index holds every row: each but the ClientToken key is partial, so a state change moves entries only of the indexes whose states it leaves or enters")
    func everyIndexButTheKeyIsPartial() async throws {
        try await withOutbox { outbox in
            let indexes = try await outbox.writer.perform { db in
                try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event' AND sql IS NOT NULL")
                    .map { ($0["name"] as String, $0["sql"] as String) }
            }
            #expect(indexes.count == 9)
            for (name, sql) in indexes where name != "event_token" {
                #expect(sql.contains("WHERE"), "\(name) holds every row: \(sql)")
            }
        }
    }

    @Test("Counts read only the index of their states, in its order: nothing sorted, and no row read for held, failed, expired or finished items")
    func countsReadOnlyTheirIndexes() async throws {
        try await withOutbox { outbox in
            let plans = try await outbox.writer.perform { db in
                try [Outbox.waitingCountsSQL, Outbox.queuedCountsSQL, Outbox.heldCountsSQL, Outbox.finishedCountsSQL].map { sql in
                    (sql, try String.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, adapter: SuffixRowAdapter(fromIndex: 3)).joined(separator: " | "))
                }
            }
            for (sql, plan) in plans {
                let steps = plan.components(separatedBy: " | ")
                #expect(!plan.contains("TEMP B-TREE") && !steps.contains("SCAN event") && plan.contains("INDEX event_"), "\(sql): \(plan)")
            }
            // The finished and the stuck items (most of the table) are counted without reading a row.
            #expect(plans[2].1.contains("COVERING INDEX event_stuck"), "\(plans[2].1)")
            #expect(plans[3].1.contains("COVERING INDEX event_finished"), "\(plans[3].1)")
        }
    }

    @Test("Schema v14 upgrades a v13 file: the index of every state is gone, held, failed and expired items are found by event_stuck, and every count is as before")
    func stateIndexReplacedFromVersion13() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let queue = try outboxFile(migratedUpTo: "v13: finished items keep a digest", in: directory)
        try await queue.write { db in
            for (token, state) in [("q", "queued"), ("s", "sending"), ("h", "held"), ("f", "failed"), ("e", "expired"), ("d", "sent"), ("x", "superseded")] {
                try db.execute(sql: """
                    INSERT INTO event (clientToken, contentType, content, connectionToken, connectionHash, state, acceptedAt, updatedAt, nextAttemptAt, deadline, priority)
                    VALUES (?, 'application/vnd.amazonaws.connect.event.typing', NULL, 'conn', ?, ?, 0, 0, 0, 9999999999999, 3)
                    """, arguments: [token, ConnectionHash.of("conn-\(token)", instance: InstanceName.defaultName), state])
            }
        }
        try queue.close()
        var limits = OutboxLimits()
        limits.holdMax = .seconds(60)
        try await withTestOutbox(clock: clock, storage: .file(in: directory), limits: limits) { outbox in
            let names = try await outbox.writer.perform { db in
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event' ORDER BY name")
            }
            #expect(!names.contains("event_state") && names.contains("event_stuck"), "\(names)")
            var expected = Outbox.zeroCounts
            // Stopped before, the sending item is queued again at the start.
            for state in [EventState.queued, .queued, .held, .failed, .expired, .sent, .superseded] { expected[state, default: 0] += 1 }
            #expect(try await outbox.countsByState() == expected)
            #expect(try await outbox.countsByInstance() == [InstanceName.defaultName: expected])
            for state in [EventState.held, .failed, .expired, .sent, .superseded] {
                #expect(try await outbox.list(state: state, connectionHashPrefix: nil, limit: 10).count == 1, "\(state)")
            }
            #expect(try await outbox.list(state: .queued, connectionHashPrefix: nil, limit: 10).map(\.clientToken) == ["q", "s"])
            clock.advance(by: .seconds(61))
            #expect(try await outbox.expireHeldTooLong() == 1)
            #expect(try await outbox.event(clientToken: "h")?.state == .expired)
        }
    }

    @Test("A database a newer participantd migrated is refused at the start, naming the migrations this version does not know, and left as it was")
    func newerSchemaRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withOutbox(directory: directory) { outbox in
            _ = try await outbox.submit(event(.messageRead, token: "kept", content: receipt("m")))
        }
        let path = directory.path + "/outbox.sqlite"
        try await markMigratedByANewerVersion(databaseAt: path)
        #expect {
            _ = try Outbox.open(path: path, logger: Logger(label: "test"))
        } throws: { error in
            guard case OutboxError.newerSchema(_, let unknown, let known) = error else { return false }
            return unknown == [laterMigration] && known == OutboxSchema.migrator.migrations.last
                && "\(error)".contains("restore a backup this version made")
        }
        #expect(try await storedClientTokens(databaseAt: path) == ["kept"])
    }

    @Test func fullConnectionHashesFromAnEarlierVersionStillMatchTheirConnection() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withOutbox(directory: directory) { outbox in
            _ = try await outbox.submit(event(.messageRead, token: "old", connection: "the-connection", content: receipt("m")))
        }
        // As version 4 of the schema stored it: the whole SHA-256 in hex.
        let fullHash = "c1b6d2f4b3d4b5a0f3b7a5c1a8e2f1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4"
        let (status, _, errors) = try await ChildProcess.run("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("UPDATE event SET connectionHash = substr(connectionHash, 1, 16) || substr(?, 17)", (sys.argv[2],))
            db.execute("DELETE FROM grdb_migrations WHERE identifier = 'v5: short connection hashes'")
            db.commit()
            """, directory.path + "/outbox.sqlite", fullHash])
        #expect(status == 0, "\(errors)")
        try await withOutbox(directory: directory) { outbox in
            // The same submission again is a duplicate, not a mismatch of connection.
            guard case .duplicate = try await outbox.submit(event(.messageRead, token: "old", connection: "the-connection", content: receipt("m"))) else {
                Issue.record("the resubmission did not match the stored event")
                return
            }
            // And a newer event of the connection waits behind the old one.
            _ = try await outbox.submit(event(.messageRead, token: "new", connection: "the-connection", content: receipt("n")))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).map(\.clientToken) == ["old"])
        }
    }

    @Test func concurrentSubmissionsAreAllStored() async throws {
        try await withOutbox { outbox in
            let outcomes = try await withThrowingTaskGroup(of: SubmitOutcome.self) { group in
                for index in 0..<500 {
                    group.addTask { try await outbox.submit(event(token: "t\(index % 250)", connection: "c\(index % 250)")) }
                }
                return try await group.reduce(into: [SubmitOutcome]()) { $0.append($1) }
            }
            let created = outcomes.filter { if case .created = $0 { true } else { false } }.count
            let duplicates = outcomes.filter { if case .duplicate = $0 { true } else { false } }.count
            #expect(created == 250)
            #expect(duplicates == 250)
            #expect(try await outbox.countsByState()[.queued] == 250)
        }
    }

    @Test func leasesOnlyTheOldestWaitingEventOfEachConnection() async throws {
        try await withOutbox { outbox in
            for index in 0..<3 {
                _ = try await outbox.submit(event(.messageRead, token: "a\(index)", connection: "A", content: receipt("a\(index)")))
                _ = try await outbox.submit(event(.messageRead, token: "b\(index)", connection: "B", content: receipt("b\(index)")))
            }
            let first = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10)
            #expect(Set(first.map(\.clientToken)) == ["a0", "b0"])
            #expect(first.allSatisfy { $0.state == .sending && $0.attempts == 1 && $0.connectionToken != nil })
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).isEmpty)

            let a0 = first.first { $0.clientToken == "a0" }!
            try await outbox.record(.sent(id: "id-a0", absoluteTime: "2026-01-01T00:00:00.000Z"), for: a0)
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).map(\.clientToken) == ["a1"])

            let sent = try #require(try await outbox.event(clientToken: "a0"))
            #expect(sent.state == .sent)
            #expect(sent.serviceId == "id-a0")
            #expect(sent.connectionToken == nil)  // erased once final
        }
    }

    @Test func readReceiptsQueuedBehindTheirDeliveredReceiptsLeaseTheDeliveredOnesInOrder() async throws {
        try await withOutbox { outbox in
            // A bridge's pattern: delivered, then read, for every message of every connection. The read
            // receipts sort first (priority) but each waits behind its connection's delivered receipt.
            for index in 0..<400 {
                _ = try await outbox.submit(event(.messageDelivered, token: "d\(index)", connection: "c\(index)", content: receipt("m\(index)")))
            }
            for index in 0..<400 {
                // Another message: a read receipt for the same one would supersede the delivered receipt.
                _ = try await outbox.submit(event(.messageRead, token: "r\(index)", connection: "c\(index)", content: receipt("n\(index)")))
            }
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10)
            #expect(leased.map(\.clientToken).sorted() == (0..<10).map { "d\($0)" }.sorted())
        }
    }

    @Test func aDueEventBeyondAWindowOfBlockedOnesIsStillLeased() async throws {
        try await withOutbox { outbox in
            // More read receipts than the lease window, all behind their connection's first one,
            // which is in flight; then one typing event of another connection, sorted last.
            let blocked = Outbox.leaseWindow(1) + 20
            for index in 0..<blocked {
                _ = try await outbox.submit(event(.messageRead, token: "busy\(index)", connection: "busy", content: receipt("m\(index)")))
            }
            _ = try await outbox.submit(event(.typing, token: "other", connection: "other"))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).map(\.clientToken) == ["busy0"])
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).map(\.clientToken) == ["other"])
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).isEmpty)
        }
    }

    @Test func retryWaitsUntilItsTimeAndBlocksLaterEventsOfTheConnection() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(event(.messageRead, token: "r0", content: receipt("1")))
            _ = try await outbox.submit(event(.messageRead, token: "r1", content: receipt("2")))
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 5)
            try await outbox.record(.retry(at: clock.date.addingTimeInterval(2), error: ErrorBody(code: "ThrottlingException", message: "slow")), for: leased[0])
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 5).isEmpty)
            #expect(try await outbox.nextWakeUp(after: clock.date, instance: InstanceName.defaultName) == clock.date.addingTimeInterval(2))
            clock.advance(by: .seconds(2))
            let again = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 5)
            #expect(again.map(\.clientToken) == ["r0"])
            #expect(again[0].attempts == 2)
            #expect(again[0].lastError?.code == "ThrottlingException")
        }
    }

    @Test("Read receipts lease first, then delivered receipts, then the rest, each oldest first")
    func leasePriority() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(event(.typing, token: "typing", connection: "1"))
            _ = try await outbox.submit(event(.connectionAcknowledged, token: "ack", connection: "2"))
            _ = try await outbox.submit(event(.messageDelivered, token: "delivered", connection: "3"))
            _ = try await outbox.submit(event(.messageRead, token: "read-old", connection: "4"))
            clock.advance(by: .seconds(1))
            _ = try await outbox.submit(event(.messageRead, token: "read-new", connection: "5"))
            var order: [String] = []
            while let next = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).first {
                order.append(next.clientToken)
            }
            #expect(order == ["read-old", "read-new", "delivered", "ack", "typing"])
        }
    }

    @Test func overdueEventsExpireAndAreNeverLeased() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(event(.typing, token: "typing"))
            _ = try await outbox.submit(event(.messageRead, token: "read", connection: "other"))
            clock.advance(by: .seconds(10))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 5).map(\.clientToken) == ["read"])
            let expired = try await outbox.expireOverdue(instance: InstanceName.defaultName)
            #expect(expired.map(\.clientToken) == ["typing"])
            let record = try #require(try await outbox.event(clientToken: "typing"))
            #expect(record.state == .expired)
            #expect(record.connectionToken == nil, "a credential is erased when its item ends")
            #expect(record.lastError?.code == "DeadlineExceeded")
        }
    }

    @Test func reopeningQueuesInterruptedEventsAgain() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withOutbox(directory: directory) { outbox in
            _ = try await outbox.submit(event(token: "in-flight"))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).count == 1)
        }
        try await withOutbox(directory: directory) { outbox in
            let record = try #require(try await outbox.event(clientToken: "in-flight"))
            #expect(record.state == .queued)
            #expect(record.attempts == 1)
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).map(\.clientToken) == ["in-flight"])
        }
    }

    @Test("The lock goes with the writer: once it stopped, the database opens again though the old outbox is still referenced")
    func theLockIsReleasedWhenTheWriterStops() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/outbox.sqlite"
        let first = try Outbox.open(path: path, clock: clock.wallClock, logger: Logger(label: "test"))
        let writer = Task { try await first.writer.run() }
        _ = try await first.submit(event(token: "one"))
        // Still running: a second daemon is refused.
        #expect(throws: OutboxError.self) { try Outbox.open(path: path, logger: Logger(label: "test")) }
        writer.cancel()
        try await writer.value
        // `first` is still alive here, as an asynchronous read's closure can keep it for a moment.
        let second = try Outbox.open(path: path, clock: clock.wallClock, logger: Logger(label: "test"))
        #expect(try await second.event(clientToken: "one")?.state == .queued)
        await #expect(throws: OutboxError.self) { try await first.submit(event(token: "two")) }
        _ = first
    }

    @Test func aSecondOpenOfTheSameDatabaseIsRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/outbox.sqlite"
        let first = try Outbox.open(path: path, logger: Logger(label: "test"))
        #expect(throws: OutboxError.self) { try Outbox.open(path: path, logger: Logger(label: "test")) }
        _ = first
    }
}

@Suite struct OutboxFileTests {
    @Test("The database, which holds connection tokens, is readable by its owner only")
    func databaseIsPrivate() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state/outbox.sqlite"
        let outbox = try Outbox.open(path: path, logger: Logger(label: "test"))
        let writer = Task { try await outbox.writer.run() }
        _ = try await outbox.submit(try EventValidator.validate(EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: "c")))
        writer.cancel()
        _ = try? await writer.value
        for file in [path, path + "-wal"] {
            let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }
        let folderMode = try FileManager.default.attributesOfItem(atPath: directory.path + "/state")[.posixPermissions] as? Int
        #expect(folderMode == 0o750)
    }
}

@Suite struct OutboxBoundsTests {
    let clock = ManualClock()

    func withOutbox<T>(limits: OutboxLimits = OutboxLimits(), _ body: (Outbox) async throws -> T) async throws -> T {
        try await withTestOutbox(clock: clock, limits: limits, body)
    }

    func event(_ type: EventContentType, _ token: String, connection: String = "conn") -> ValidatedEvent {
        try! EventValidator.validate(EventSubmission(contentType: type.rawValue, content: type.sampleContent(token), clientToken: token, connectionToken: connection))
    }

    @Test("A 403 fails every queued event of the connection and refuses new ones until the block runs out")
    func deadConnection() async throws {
        var limits = OutboxLimits()
        limits.blockDuration = .seconds(60)
        try await withOutbox(limits: limits) { outbox in
            for token in ["a", "b", "c"] { _ = try await outbox.submit(event(.messageRead, token)) }
            _ = try await outbox.submit(event(.typing, "other", connection: "other"))
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10)
            let first = try #require(leased.first { $0.clientToken == "a" })
            let denied = ErrorBody(code: "AccessDeniedException", message: "chat ended")
            #expect(try await outbox.record(.failed(denied, block: .all), for: first) == 2)
            for token in ["a", "b", "c"] {
                let record = try #require(try await outbox.event(clientToken: token))
                #expect(record.state == .failed)
                #expect(record.lastError == denied)
                #expect(record.connectionToken == nil, "a credential is erased when its item ends")
            }
            #expect(try await outbox.event(clientToken: "other")?.state == .sending)
            #expect(outbox.waitingCount == 1)

            guard case .blocked(let block) = try await outbox.submit(event(.typing, "d")) else { Issue.record("not blocked"); return }
            #expect(block.scope == .all)
            #expect(block.error == denied)
            // The same token's resubmission still gets its record.
            guard case .duplicate = try await outbox.submit(event(.messageRead, "a")) else { Issue.record("expected duplicate"); return }

            clock.advance(by: .seconds(61))
            guard case .created = try await outbox.submit(event(.typing, "e")) else { Issue.record("block should have run out"); return }
        }
    }

    @Test("A 409 on a receipt refuses the connection's receipts; its typing events still go")
    func receiptsRefused() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(event(.messageDelivered, "r1"))
            _ = try await outbox.submit(event(.typing, "t1"))
            _ = try await outbox.submit(event(.messageRead, "r2"))
            let r1 = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).first)
            #expect(try await outbox.record(.failed(ErrorBody(code: "ConflictException", message: "no receipts"), block: .receipts), for: r1) == 1)
            #expect(try await outbox.event(clientToken: "r2")?.state == .failed)
            #expect(try await outbox.event(clientToken: "t1")?.state == .queued)
            guard case .blocked(let block) = try await outbox.submit(event(.messageRead, "r3")) else { Issue.record("not blocked"); return }
            #expect(block.scope == .receipts)
            guard case .created = try await outbox.submit(event(.typing, "t2")) else { Issue.record("typing must pass"); return }
        }
    }

    @Test("Beyond capacity submissions are refused, nothing stored is dropped, and room comes back")
    func capacity() async throws {
        var limits = OutboxLimits()
        limits.capacity = 2
        limits.peerShare = 1  // one peer may fill it: this is the outbox's own bound
        try await withOutbox(limits: limits) { outbox in
            _ = try await outbox.submit(event(.typing, "1", connection: "a"))
            _ = try await outbox.submit(event(.typing, "2", connection: "b"))
            await #expect(throws: OutboxError.full(capacity: 2)) { try await outbox.submit(event(.typing, "3", connection: "c")) }
            guard case .duplicate = try await outbox.submit(event(.typing, "1", connection: "a")) else { Issue.record("duplicate must be answered"); return }
            #expect(try await outbox.countsByState()[.queued] == 2)
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1)
            try await outbox.record(.sent(id: "i", absoluteTime: "t"), for: leased[0])
            guard case .created = try await outbox.submit(event(.typing, "3", connection: "c")) else { Issue.record("room should be back"); return }
        }
    }

    @Test("Finished events are deleted after the retention period; waiting and held ones never")
    func retention() async throws {
        var limits = OutboxLimits()
        limits.retention = .seconds(3_600)
        try await withOutbox(limits: limits) { outbox in
            _ = try await outbox.submit(event(.messageRead, "done", connection: "a"))
            _ = try await outbox.submit(event(.messageRead, "waiting", connection: "b"))
            _ = try await outbox.submit(event(.messageRead, "held", connection: "c"))
            _ = try await outbox.hold(clientToken: "held")
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10)
            try await outbox.record(.sent(id: "i", absoluteTime: "t"), for: leased.first { $0.clientToken == "done" }!)
            try await outbox.record(.retry(at: clock.date.addingTimeInterval(86_400), error: ErrorBody(code: "x", message: "y")), for: leased.first { $0.clientToken == "waiting" }!)
            #expect(try await outbox.deleteExpiredHistory() == 0)
            #expect(try await outbox.sentCount(within: .seconds(60)) == 1)
            clock.advance(by: .seconds(3601))
            #expect(try await outbox.deleteExpiredHistory() == 1)
            #expect(try await outbox.event(clientToken: "done") == nil)
            #expect(try await outbox.event(clientToken: "waiting")?.state == .queued)
            #expect(try await outbox.event(clientToken: "held")?.state == .held)
        }
    }

    @Test("No insert or state change builds a temporary table: SQLite builds one at every statement for an IN list of more than two values, and each evaluates every partial index's condition (schema v8)")
    func noTemporaryTablePerStatement() async throws {
        try await withOutbox { outbox in
            let statements = [
                "INSERT INTO event (clientToken, contentType, connectionHash, state, acceptedAt, updatedAt, deadline, messageId) VALUES ('a', 'b', 'c', 'queued', 1, 1, 1, 'm')",
                "UPDATE event SET state = 'sending', attempts = attempts + 1, updatedAt = 2, leasedAt = 2 WHERE seq = 1",
                "UPDATE event SET state = 'sent', connectionToken = NULL, nextAttemptAt = NULL, updatedAt = 3 WHERE seq = 1 AND state = 'sending'",
            ] + EventTransition.all.map { $0.sql(where: "seq = :seq", returning: false) }
            for sql in statements {
                // A value for each named argument (EXPLAIN compiles the statement; nothing runs).
                let names = Set(sql.matches(of: /:([A-Za-z]+)/).map { String($0.output.1) })
                let arguments = StatementArguments(Dictionary(uniqueKeysWithValues: names.map { ($0, 1 as (any DatabaseValueConvertible)?) }))
                let opcodes = try await outbox.writer.perform { db in
                    try Row.fetchAll(db, sql: "EXPLAIN " + sql, arguments: arguments).map { $0["opcode"] as String }
                }
                let buildsTemporaryTable = opcodes.contains("OpenEphemeral")
                #expect(!buildsTemporaryTable, "\(sql)")
            }
        }
    }
}
