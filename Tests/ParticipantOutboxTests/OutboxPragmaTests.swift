import Foundation
import GRDB
import InMemoryLogging
import Logging
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantTestSupport
import ParticipantWire
import Testing

/// Acknowledged means on disk, at the outbox: `synchronous=NORMAL` (SQLite's own syncs, at
/// checkpoints and when the WAL starts over; the outbox syncs each commit itself, CommitSyncTests)
/// and every other setting in force on the writer, read back where it takes effect, and what
/// happens when one is not. (The syncs the real binary makes, and power cuts, are in
/// ParticipantdTests' DurabilityTests.)
@Suite struct OutboxPragmaTests {
    // MARK: The settings, read back where they take effect

    @Test("The writer connection runs synchronous=NORMAL and every other setting the outbox asks for; the writer syncs each commit itself")
    func writerSettingsInForce() async throws {
        var limits = OutboxLimits()
        limits.maxDatabaseMegabytes = 64
        try await withTestOutbox(clock: ManualClock(), storage: .temporaryFile, limits: limits) { outbox in
            let values = try await outbox.database.write { db in
                [
                    "synchronous": try Int.fetchOne(db, sql: "PRAGMA synchronous"),
                    "temp_store": try Int.fetchOne(db, sql: "PRAGMA temp_store"),
                    "secure_delete": try Int.fetchOne(db, sql: "PRAGMA secure_delete"),
                    "cache_size": try Int.fetchOne(db, sql: "PRAGMA cache_size"),
                    "wal_autocheckpoint": try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint"),
                    "max_page_count": try Int.fetchOne(db, sql: "PRAGMA max_page_count"),
                ]
            }
            #expect(values["synchronous"] == 1, "NORMAL is 1: SQLite syncs at checkpoints, the outbox after each commit")
            #expect(outbox.writer.syncsEachCommit)
            #expect(values["temp_store"] == 2)
            #expect(values["secure_delete"] == 1)
            #expect(values["cache_size"] == -16_384)
            #expect(values["wal_autocheckpoint"] == 4_000)
            #expect(values["max_page_count"] == 64 * 1_048_576 / 4_096)
            let journalMode = try await outbox.database.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
            #expect(journalMode == "wal")
        }
    }

    @Test("outbox.syncEveryCommit false opens with synchronous=NORMAL on the writer, and says that commits are not synced")
    func syncAtCheckpointsInForce() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let logs = InMemoryLogHandler()
        let outbox = try Outbox.open(
            path: directory.path + "/outbox.sqlite", durability: .syncAtCheckpoints, logger: Logger(label: "test", factory: { _ in logs })
        )
        let synchronous = try await outbox.database.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
        #expect(synchronous == 1, "NORMAL is 1")
        #expect(!outbox.writer.syncsEachCommit)
        #expect(logs.entries.contains { $0.message == "Commits are not synced to disk: a power loss may lose acknowledged events" })
    }

    @Test("GRDB's DatabasePool undoes a synchronous set in prepareDatabase on the writer (why the outbox sets and reads its settings back there)")
    func poolUndoesFull() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: directory.path + "/plain.sqlite", configuration: configuration)
        // If GRDB stops doing this, the outbox's second `apply` is no longer needed (and this fails).
        #expect(try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 1)
    }

    /// Every setting as the writer reports it with no size limit.
    static let fullInForce = ["journal_mode": "wal", "synchronous": "1", "temp_store": "2", "secure_delete": "1",
                              "cache_size": "-16384", "wal_autocheckpoint": "4000"]

    @Test("A setting that does not read back as asked is named with what it reads, what it must be and why", arguments: [
        (["synchronous": "0"], "PRAGMA synchronous is 0 (OFF) on the writer, not 1 (NORMAL)"),
        (["synchronous": "2"], "PRAGMA synchronous is 2 (FULL) on the writer, not 1 (NORMAL)"),
        (["journal_mode": "delete"], "PRAGMA journal_mode is delete on the writer, not wal"),
        (["temp_store": "0"], "PRAGMA temp_store is 0 (DEFAULT) on the writer, not 2 (MEMORY)"),
        (["secure_delete": "0"], "PRAGMA secure_delete is 0 (OFF) on the writer, not 1 (ON)"),
        (["cache_size": "-2000"], "PRAGMA cache_size is -2000 on the writer, not -16384"),
        (["wal_autocheckpoint": "1000"], "PRAGMA wal_autocheckpoint is 1000 on the writer, not 4000"),
        (["max_page_count": "4294967294"], "PRAGMA max_page_count is 4294967294 on the writer, not 256"),
    ])
    func mismatchNamed(override: [String: String], message: String) {
        let pragmas = OutboxPragmas(durability: .syncEveryCommit, maxPageCount: 256)
        let inForce = Self.fullInForce.merging(["max_page_count": "256"]) { $1 }
        #expect(pragmas.mismatches(in: inForce).isEmpty)
        let found = pragmas.mismatches(in: inForce.merging(override) { $1 })
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix(message) == true, "\(found)")
    }

    @Test("max_page_count reads back as the database's size when the database is already larger: in force, not a mismatch")
    func maxPageCountBelowTheDatabaseSize() {
        let pragmas = OutboxPragmas(durability: .syncEveryCommit, maxPageCount: 256)
        let inForce = Self.fullInForce
        #expect(pragmas.mismatches(in: inForce.merging(["max_page_count": "300", "page_count": "300"]) { $1 }).isEmpty)
        // Larger than asked for without being the database's size: not what SQLite does, refused.
        #expect(pragmas.mismatches(in: inForce.merging(["max_page_count": "300", "page_count": "200"]) { $1 }).count == 1)
    }

    @Test("An outbox larger than a lowered outbox.maxDatabaseMegabytes still opens; new events are refused as full")
    func reopenWithASmallerLimit() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Given a database of more than 1 MiB,
        var large = OutboxLimits()
        large.maxDatabaseMegabytes = 4
        try await withTestOutbox(clock: ManualClock(), storage: .file(in: directory), limits: large) { outbox in
            for index in 0..<150 {
                _ = try await outbox.submit(try EventValidator.validate(EventSubmission(
                    contentType: EventContentType.messageRead.rawValue,
                    content: #"{"messageId": "\#(index)", "pad": "\#(String(repeating: "x", count: 12_000))"}"#,
                    clientToken: "large-\(index)", connectionToken: "conn-\(index)"
                )))
            }
        }
        // when it is opened with a limit of 1 MiB, it opens, and the limit in force is its size.
        var small = OutboxLimits()
        small.maxDatabaseMegabytes = 1
        try await withTestOutbox(clock: ManualClock(), storage: .file(in: directory), limits: small) { outbox in
            #expect(try await outbox.event(clientToken: "large-0") != nil)
            let (maxPages, pages) = try await outbox.database.write { db in
                (try Int.fetchOne(db, sql: "PRAGMA max_page_count"), try Int.fetchOne(db, sql: "PRAGMA page_count"))
            }
            #expect(maxPages == pages)
            #expect((pages ?? 0) > 256)
            // A new event needs room the limit does not give: refused, nothing half stored.
            await #expect(throws: OutboxError.self) {
                try await outbox.submit(try EventValidator.validate(EventSubmission(
                    contentType: EventContentType.messageRead.rawValue,
                    content: #"{"messageId": "new", "pad": "\#(String(repeating: "y", count: 12_000))"}"#,
                    clientToken: "new", connectionToken: "conn-new"
                )))
            }
            #expect(try await outbox.event(clientToken: "new") == nil)
        }
    }

    @Test("A missing reading is a mismatch, and NORMAL is what both durabilities ask of SQLite")
    func mismatchRules() {
        let full = OutboxPragmas(durability: .syncEveryCommit, maxPageCount: nil)
        #expect(full.mismatches(in: [:]).count == full.settings.filter(\.enforced).count)
        #expect(full.settings.filter { !$0.enforced }.map(\.name) == ["auto_vacuum"], "only the file's shrinking is not required to open")
        #expect(full.mismatches(in: [:]).first == "PRAGMA journal_mode is unreadable on the writer, not wal (readers that never wait for the writer)")
        let normal = OutboxPragmas(durability: .syncAtCheckpoints, maxPageCount: nil)
        // (SQLite's spelling of the journal mode is compared without its case.)
        let inForce = Self.fullInForce.merging(["journal_mode": "WAL"]) { $1 }
        #expect(normal.mismatches(in: inForce).isEmpty)
        #expect(full.mismatches(in: inForce).isEmpty)
        #expect(!normal.settings.contains { $0.name == "max_page_count" })
    }
}
