import Dispatch
import GRDB
import Logging
@testable import ParticipantOutbox
import ParticipantTestSupport
import Testing

/// The group commit: its size, bounded in items, not only in writes; and a write that fails
/// undone alone, whether it shares its transaction or has it to itself.
@Suite struct OutboxWriterTests {
    @Test("A transaction takes writes up to 4,096 items by weight, at most 4,096 writes, and always the first", arguments: [
        ([1, 1, 1], 3),
        (Array(repeating: 500, count: 10), 8),      // 8 x 500 = 4,000; a ninth would be 4,500
        ([10_000, 1], 1),                            // one heavy write goes alone
        ([1, 10_000], 1),                            // and waits for the next transaction behind a light one
        (Array(repeating: 1, count: 5_000), 4_096),  // the writes' own bound
        ([], 0),
    ])
    func batchLength(weights: [Int], expected: Int) {
        #expect(OutboxWriter.batchLength(weights: weights, maxWeight: OutboxWriter.maxBatchWeight, maxWrites: OutboxWriter.maxBatchSize) == expected)
    }

    struct Refused: Error {}

    /// A writer on a database of one table, running until `body` returns; `afterStop` runs once
    /// its thread has ended.
    private func withWriter(
        _ body: (OutboxWriter, DatabasePool) async throws -> Void, afterStop: (DatabasePool) throws -> Void = { _ in }
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try DatabasePool(path: directory.path + "/writer.sqlite")
        try await database.write { db in try db.execute(sql: "CREATE TABLE item (name TEXT PRIMARY KEY)") }
        let writer = OutboxWriter(database: database, logger: Logger(label: "test"))
        let running = Task { try await writer.run() }
        do {
            try await body(writer, database)
        } catch {
            writer.close()
            _ = await running.result
            throw error
        }
        writer.close()
        try await running.value
        try afterStop(database)
    }

    private func names(_ database: DatabasePool) throws -> [String] {
        try database.read { db in try String.fetchAll(db, sql: "SELECT name FROM item ORDER BY name") }
    }

    @Test("A write alone in its transaction that fails after a change leaves nothing; the next one commits")
    func failedWriteAlone() async throws {
        try await withWriter { writer, database in
            await #expect(throws: Refused.self) {
                try await writer.perform { db in
                    try db.execute(sql: "INSERT INTO item (name) VALUES ('undone')")
                    throw Refused()
                }
            }
            #expect(try names(database) == [], "the failed write's insert was rolled back")
            try await writer.perform { db in try db.execute(sql: "INSERT INTO item (name) VALUES ('kept')") }
            #expect(try names(database) == ["kept"])
        }
    }

    @Test("In a transaction of several writes, the one that fails is undone alone; the others commit")
    func failedWriteAmongOthers() async throws {
        try await withWriter { writer, database in
            // The first write holds the writer until three more wait: the four share no
            // transaction with it, but the three share the next one.
            // (The gate opens by itself after a while, so that a failed wait does not leave the writer blocked.)
            let gate = DispatchSemaphore(value: 0)
            let taken = Locked(false)
            let first = Task { try await writer.perform { db in
                taken.withLock { $0 = true }
                _ = gate.wait(timeout: .now() + 30)
                try db.execute(sql: "INSERT INTO item (name) VALUES ('first')")
            } }
            try await eventually(timeout: .seconds(10), "the first write to be taken") { taken.withLock { $0 } }
            let writes = ["a", "b", "c"].map { name in
                Task { try await writer.perform { db in
                    try db.execute(sql: "INSERT INTO item (name) VALUES (?)", arguments: [name])
                    if name == "b" { throw Refused() }
                } }
            }
            try await eventually(timeout: .seconds(10), "three writes to wait") { writer.pendingCount == 3 }
            gate.signal()
            try await first.value
            try await writes[0].value
            await #expect(throws: Refused.self) { try await writes[1].value }
            try await writes[2].value
            #expect(try names(database) == ["a", "c", "first"])
        }
    }

    @Test("The writer's direct statements are prepared once for its connection, kept across transactions, and finalized when it stops: the connection then closes")
    func directStatementsKeptForTheConnection() async throws {
        let insert = DirectSQL("INSERT INTO item (name) VALUES (?)")
        try await withWriter({ writer, _ in
            func direct(_ name: String) async throws -> Bool {
                try await withCheckedThrowingContinuation { continuation in
                    writer.perform(direct: { statements in
                        let heldBefore = statements.holds(insert)
                        try DirectStatement.execute(insert, [name], in: statements)
                        return heldBefore
                    }, completion: { continuation.resume(with: $0) })
                }
            }
            // Each awaited before the next is handed over: three transactions.
            #expect(try await direct("a") == false, "prepared at the first transaction")
            #expect(try await direct("b"), "kept for the second")
            try await writer.perform { db in db.releaseMemory() }  // GRDB's own statement cache emptied
            #expect(try await direct("c"), "kept whatever GRDB's cache holds")
        }, afterStop: { database in
            #expect(try names(database) == ["a", "b", "c"])
            // GRDB's close refuses (SQLITE_BUSY) while a statement of the connection is alive.
            try database.close()
        })
    }
}
