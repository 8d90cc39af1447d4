import Dispatch
import Foundation
import GRDB
import Logging
@testable import ParticipantOutbox
import ParticipantTestSupport
import Synchronization
import Testing

/// The writer's own sync of each commit (`outbox.syncEveryCommit`): a write acknowledged only
/// after a sync that began after its transaction committed; the next transaction written while
/// the last one's sync runs; a failed sync acknowledging nothing it covered. (The real binary's
/// `fdatasync` calls and power cuts are in ParticipantdTests' DurabilityTests.)
@Suite struct CommitSyncTests {
    struct SyncFailed: Error {}

    /// A sync that holds each call until the test releases it, and fails when told to.
    final class GatedSync: CommitSync {
        struct State {
            var started = 0
            var finished = 0
            var hold = true
            var failNext = false
        }

        let state = Mutex(State())
        private let gate = DispatchSemaphore(value: 0)

        func sync() throws {
            let hold = state.withLock { state in
                state.started += 1
                return state.hold
            }
            // Opens by itself after a while, so that a failed test does not leave the writer blocked.
            if hold { _ = gate.wait(timeout: .now() + 30) }
            let fail = state.withLock { state in
                state.finished += 1
                defer { state.failNext = false }
                return state.failNext
            }
            if fail { throw SyncFailed() }
        }

        var started: Int { state.withLock { $0.started } }
        var finished: Int { state.withLock { $0.finished } }

        /// Lets one held call return.
        func releaseOne() { gate.signal() }

        /// No call is held from now on; the one held now returns.
        func open() {
            state.withLock { $0.hold = false }
            gate.signal()
        }
    }

    /// A writer with `sync` on a database of one table, running until `body` returns; what
    /// `run()` threw, if anything, is returned.
    @discardableResult
    private func withWriter(
        sync: GatedSync, _ body: (OutboxWriter, DatabasePool) async throws -> Void
    ) async throws -> (any Error)? {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (writer, database) = try Self.writer(sync: sync, in: directory)
        let running = Task { try await writer.run() }
        do {
            try await body(writer, database)
        } catch {
            sync.open()
            writer.close()
            _ = await running.result
            throw error
        }
        sync.open()
        writer.close()
        if case .failure(let error) = await running.result { return error }
        return nil
    }

    /// A writer with `sync` (not running) over a database of one table, `item`, in `directory`.
    private static func writer(sync: GatedSync, in directory: TemporaryDirectory) throws -> (OutboxWriter, DatabasePool) {
        let database = try DatabasePool(path: directory.path + "/writer.sqlite")
        try database.write { db in try db.execute(sql: "CREATE TABLE item (name TEXT PRIMARY KEY)") }
        return (OutboxWriter(database: database, commitSync: sync, logger: Logger(label: "test")), database)
    }

    /// Inserts `name` through `writer`; the result, once acknowledged, goes to `outcome`.
    private func insert(_ name: String, _ writer: OutboxWriter, into outcome: Locked<Result<Void, any Error>?>) {
        writer.perform({ db in try db.execute(sql: "INSERT INTO item (name) VALUES (?)", arguments: [name]) }) { result in
            outcome.withLock { $0 = result }
        }
    }

    private func committed(_ name: String, _ database: DatabasePool) throws -> Bool {
        try database.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM item WHERE name = ?)", arguments: [name]) ?? false }
    }

    @Test("A write is acknowledged only after a sync that began after its transaction committed")
    func acknowledgedAfterTheSync() async throws {
        let sync = GatedSync()
        try await withWriter(sync: sync) { writer, database in
            let outcome = Locked<Result<Void, any Error>?>(nil)
            insert("a", writer, into: outcome)
            try await eventually(timeout: .seconds(10), "the sync to start") { sync.started == 1 }
            #expect(try committed("a", database), "the transaction committed before its sync")
            // However long the sync takes, nothing is acknowledged before it returns.
            try await Task.sleep(for: .milliseconds(50))
            #expect(outcome.value == nil, "acknowledged before the sync returned")
            sync.releaseOne()
            try await eventually(timeout: .seconds(10), "the write to be acknowledged") { outcome.value != nil }
            #expect(throws: Never.self) { try outcome.value?.get() }
        }
    }

    /// Commits "x", then "y" while x's sync is held: x's write holds its transaction open until
    /// y waits, so that the writer has y pending when x commits and hands x's sync to the sync
    /// thread (a commit with nothing pending is synced on the writer's thread, as one client's
    /// is). Returns once y has committed and x's sync has started; neither is acknowledged.
    private func twoInFlight(
        _ writer: OutboxWriter, _ database: DatabasePool, _ sync: GatedSync,
        _ x: Locked<Result<Void, any Error>?>, _ y: Locked<Result<Void, any Error>?>
    ) async throws {
        let gate = DispatchSemaphore(value: 0)
        let taken = Locked(false)
        writer.perform({ db in
            taken.withLock { $0 = true }
            _ = gate.wait(timeout: .now() + 30)
            try db.execute(sql: "INSERT INTO item (name) VALUES ('x')")
        }) { result in x.withLock { $0 = result } }
        try await eventually(timeout: .seconds(10), "x's write to be taken") { taken.value }
        // y commits only once x's sync has begun (else one sync may cover both: also right,
        // but not what this shows).
        writer.perform({ db in
            let end = ContinuousClock.now + .seconds(30)
            while sync.started < 1 && ContinuousClock.now < end { usleep(1_000) }
            try db.execute(sql: "INSERT INTO item (name) VALUES ('y')")
        }) { result in y.withLock { $0 = result } }
        try await eventually(timeout: .seconds(10), "y to wait") { writer.pendingCount == 1 }
        gate.signal()
        try await eventually(timeout: .seconds(10), "x's sync to start") { sync.started == 1 }
        // The writer's thread is not waiting for the disk: y commits while x's sync is held.
        try await eventually(timeout: .seconds(10), "y to commit while x's sync runs") { try committed("y", database) }
        #expect(sync.finished == 0)
        #expect(x.value == nil && y.value == nil, "acknowledged before a sync returned")
    }

    @Test("While one transaction's sync runs, the next one commits; its writes wait for a sync of their own")
    func nextTransactionBesideTheSync() async throws {
        let sync = GatedSync()
        try await withWriter(sync: sync) { writer, database in
            let x = Locked<Result<Void, any Error>?>(nil), y = Locked<Result<Void, any Error>?>(nil)
            try await twoInFlight(writer, database, sync, x, y)
            sync.releaseOne()
            try await eventually(timeout: .seconds(10), "x to be acknowledged") { x.value != nil }
            // x's sync began before y committed: it does not acknowledge y.
            try await eventually(timeout: .seconds(10), "a second sync to start") { sync.started == 2 }
            #expect(y.value == nil, "y acknowledged by a sync that began before it committed")
            sync.releaseOne()
            try await eventually(timeout: .seconds(10), "y to be acknowledged") { y.value != nil }
            #expect(throws: Never.self) { try x.value?.get() }
            #expect(throws: Never.self) { try y.value?.get() }
        }
    }

    @Test("A transaction that changes no row is acknowledged without a sync when every commit is synced; else with the next sync")
    func unchangedTransaction() async throws {
        let sync = GatedSync()
        try await withWriter(sync: sync) { writer, database in
            let read = { @Sendable (name: String) in
                { @Sendable (db: Database) throws -> Bool in
                    try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM item WHERE name = ?)", arguments: [name]) ?? false
                }
            }
            // Nothing waits for a sync: answered at once, no sync.
            #expect(try await writer.perform(read("x")) == false)
            #expect(sync.started == 0)
            // Behind x's and y's syncs: a write that changes nothing but reads y, committed and
            // not yet on disk, is answered only once a sync has covered y.
            let x = Locked<Result<Void, any Error>?>(nil), y = Locked<Result<Void, any Error>?>(nil)
            try await twoInFlight(writer, database, sync, x, y)
            let seen = Locked<Result<Bool, any Error>?>(nil)
            writer.perform(read("y")) { result in seen.withLock { $0 = result } }
            try await eventually(timeout: .seconds(10), "the read to commit, waiting with y for a sync") { writer.unsyncedCount == 2 }
            sync.releaseOne()
            try await eventually(timeout: .seconds(10), "a second sync to start") { sync.started == 2 }
            #expect(seen.value == nil, "answered before y was synced")
            sync.releaseOne()
            try await eventually(timeout: .seconds(10), "the read to be answered") { seen.value != nil }
            #expect(try seen.value?.get() == true)
            #expect(y.value != nil)
        }
    }

    @Test("A failed sync: no write it covered, nor any committed after it, is acknowledged; the writer refuses the rest and run() throws")
    func failedSync() async throws {
        let sync = GatedSync()
        let thrown = try await withWriter(sync: sync) { writer, database in
            let x = Locked<Result<Void, any Error>?>(nil), y = Locked<Result<Void, any Error>?>(nil)
            try await twoInFlight(writer, database, sync, x, y)
            sync.state.withLock { $0.failNext = true }
            sync.releaseOne()
            try await eventually(timeout: .seconds(10), "both to be answered") { x.value != nil && y.value != nil }
            for outcome in [x, y] {
                #expect(throws: OutboxError.self) { try outcome.value?.get() }
            }
            await #expect(throws: OutboxError.self) {
                try await writer.perform { db in try db.execute(sql: "INSERT INTO item (name) VALUES ('c')") }
            }
            #expect(try !committed("c", database), "a write after the failure ran")
        }
        let failure = try #require(thrown as? OutboxError)
        guard case .failed(let reason) = failure else {
            Issue.record("run() threw \(failure), not failed")
            return
        }
        #expect(reason.contains("could not be synced"), "\(reason)")
    }

    @Test("At stop, the writer's last commits are synced and acknowledged before run() returns")
    func syncedAtStop() async throws {
        let sync = GatedSync()
        let outcome = Locked<Result<Void, any Error>?>(nil)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // The writer's task itself, not withWriter's: the test watches run() return.
        let (writer, _) = try Self.writer(sync: sync, in: directory)
        let stopped = Locked(false)
        let running = Task {
            defer { stopped.withLock { $0 = true } }
            try await writer.run()
        }
        insert("a", writer, into: outcome)
        try await eventually(timeout: .seconds(10), "the sync to start") { sync.started == 1 }
        writer.close()
        try await Task.sleep(for: .milliseconds(50))
        #expect(!stopped.value, "run() returned while a commit was not synced")
        sync.open()
        try await running.value
        #expect(throws: Never.self) { try outcome.value?.get() }
    }

    @Test("WALSync names the file and the call that failed; a WAL replaced on disk is opened again by its path")
    func walSyncByPath() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.path + "/outbox.sqlite"
        let wal = WALSync(databasePath: database)
        #expect(wal.path == database + "-wal")
        #expect { try wal.sync() } throws: { error in
            "\(error)" == "open of \(database)-wal failed: No such file or directory (errno 2)"
        }
        #expect(FileManager.default.createFile(atPath: wal.path, contents: Data("one".utf8)))
        try wal.sync()
        try FileManager.default.removeItem(atPath: wal.path)
        #expect(FileManager.default.createFile(atPath: wal.path, contents: Data("two".utf8)))
        try wal.sync()
        // The first file's descriptor was closed: none of this process's points at a deleted WAL.
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
        let deleted = descriptors.filter { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) == wal.path + " (deleted)"
        }
        #expect(deleted.isEmpty, "still open: \(deleted)")
    }
}
