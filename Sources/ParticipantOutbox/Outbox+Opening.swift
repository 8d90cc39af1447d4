import Foundation
import GRDB
import Logging
import ParticipantInput
import ParticipantWire

/// Opening the outbox: the file and its lock, SQLite's settings, the schema's migrations, and
/// the events a stop interrupted (as GRDB's demo `AppDatabase` sets its database up).
extension Outbox {
    /// Opens (creating if needed) the database at `path`, migrates it, and puts events that a
    /// crash left in `sending` back to `queued`, to be sent again with the same ClientToken.
    public static func open(
        path: String,
        deadlines: EventDeadlines = EventDeadlines(),
        limits: OutboxLimits = OutboxLimits(),
        durability: CommitDurability = .syncEveryCommit,
        coalescing: CoalescingRules = CoalescingRules(),
        clock: WallClock = .system,
        metrics: OutboxMetrics? = nil,
        logger: Logger
    ) throws -> Outbox {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750]
                )
            } catch {
                throw OutboxError.open(path: path, reason: "cannot create the directory \(directory): \(error.localizedDescription)")
            }
        }
        let lock = try DatabaseLock(databasePath: path)
        try DatabaseLock.createPrivateFileIfMissing(path)
        removeLeftoverBackups(of: path, logger: logger)

        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        let maxDatabaseBytes = Int64(limits.maxDatabaseMegabytes) * 1_048_576
        let pragmas = try OutboxPragmas(
            durability: durability,
            maxPageCount: maxDatabaseBytes > 0 ? max(1, maxDatabaseBytes / Self.pageSize(ofDatabaseAt: path)) : nil
        )
        configuration.prepareDatabase { db in try pragmas.apply(to: db) }
        let database: DatabasePool
        do {
            database = try DatabasePool(path: path, configuration: configuration)
            // DatabasePool set `synchronous = NORMAL` on the writer after `prepareDatabase`, when
            // it turned WAL on: set everything again on the writer before the first write of ours.
            try database.writeWithoutTransaction { db in try pragmas.apply(to: db) }
            try quickCheck(database, path: path, within: limits.startupCheck, logger: logger)
            try refuseNewerSchema(database, path: path)
            try OutboxSchema.migrator.migrate(database)
            try enableIncrementalVacuum(database, path: path, logger: logger)
            // Then the size limit, and every setting read back where it takes effect.
            let mismatches = try database.writeWithoutTransaction { db in
                try pragmas.applyAfterMigrations(to: db)
                return pragmas.mismatches(in: try pragmas.read(from: db))
            }
            guard mismatches.isEmpty else {
                throw OutboxError.open(path: path, reason: "a setting is not in force: " + mismatches.joined(separator: "; "))
            }
        } catch let error as OutboxError {
            throw error
        } catch where OutboxError.isDamage(error) {
            throw OutboxError.damaged(path: path, reason: String(describing: error))
        } catch {
            throw OutboxError.open(path: path, reason: String(describing: error))
        }
        if durability == .syncAtCheckpoints {
            logger.warning("Commits are not synced to disk: a power loss may lose acknowledged events", metadata: [
                "outbox.synchronous": "NORMAL", "outbox.sync_every_commit": "false",
            ])
        }

        do {
            return try Outbox(
                migrated: database, lock: lock, commitSync: durability == .syncEveryCommit ? WALSync(databasePath: path) : nil,
                deadlines: deadlines, limits: limits, coalescing: coalescing, clock: clock, metrics: metrics, logger: logger
            )
        } catch where OutboxError.isDamage(error) {
            // Damage the check did not reach (it was off, or interrupted).
            throw OutboxError.damaged(path: path, reason: String(describing: error))
        }
    }

    /// An outbox over a database of the caller's, such as GRDB's in-memory `DatabaseQueue()` in
    /// tests (as GRDB's demo `AppDatabase` is tested): migrated here, with none of the file's
    /// settings or lock. What it keeps is gone when the database is.
    package static func open(
        database: any DatabaseWriter,
        deadlines: EventDeadlines = EventDeadlines(),
        limits: OutboxLimits = OutboxLimits(),
        coalescing: CoalescingRules = CoalescingRules(),
        clock: WallClock = .system,
        logger: Logger
    ) throws -> Outbox {
        try OutboxSchema.migrator.migrate(database)
        return try Outbox(
            migrated: database, lock: nil, commitSync: nil, deadlines: deadlines, limits: limits, coalescing: coalescing,
            clock: clock, metrics: nil, logger: logger
        )
    }

    /// Refuses a database a newer participantd migrated: GRDB's migrator would let it pass, and
    /// this version's statements would then meet a schema they do not know (schema v14 dropped
    /// an index the earlier ones name), failing at the first lease instead of at the start.
    static func refuseNewerSchema(_ database: any DatabaseWriter, path: String) throws {
        let migrator = OutboxSchema.migrator
        let unknown = try database.read { db in
            guard try db.tableExists("grdb_migrations") else { return [String]() }
            return try migrator.appliedIdentifiers(db).subtracting(migrator.migrations).sorted()
        }
        guard unknown.isEmpty else {
            throw OutboxError.newerSchema(path: path, unknown: unknown, known: migrator.migrations.last ?? "none")
        }
    }

    /// The outbox over a migrated database; events a stop left in `sending` are queued again.
    /// `commitSync`: what the writer syncs before it acknowledges a commit (`nil`: none of its own).
    private init(
        migrated database: any DatabaseWriter, lock: DatabaseLock?, commitSync: (any CommitSync)?, deadlines: EventDeadlines, limits: OutboxLimits,
        coalescing: CoalescingRules, clock: WallClock, metrics: OutboxMetrics?, logger: Logger
    ) throws {
        let waitingNow = try database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event INDEXED BY event_waiting_by_connection WHERE \(Outbox.waiting)") ?? 0
        }
        self.init(
            writer: OutboxWriter(database: database, lock: lock, commitSync: commitSync, logger: logger),
            database: database, deadlines: deadlines, rules: Rules(limits: limits, coalescing: coalescing), waiting: WaitingCount(waitingNow),
            clock: clock, lock: lock, storage: StorageState(logger: logger), metrics: metrics
        )
        let requeued = try requeueInterrupted()
        if requeued > 0 {
            logger.notice("Events interrupted by a stop were queued again", metadata: ["outbox.requeued": "\(requeued)"])
        }
    }

    /// SQLite's `quick_check` (every page and index entry read, in O(N); not the slower
    /// `integrity_check`'s index-to-table match), interrupted after `limit`. Damage throws
    /// ``OutboxError/damaged(path:reason:)``; its duration is logged.
    private static func quickCheck(_ database: DatabasePool, path: String, within limit: Duration, logger: Logger) throws {
        guard limit > .zero else {
            logger.notice("The outbox was opened without a check (outbox.startupCheckSeconds is 0)")
            return
        }
        let started = ContinuousClock.now
        let timer = DispatchWorkItem { database.interrupt() }
        DispatchQueue.global().asyncAfter(deadline: .now() + limit.timeInterval, execute: timer)
        defer { timer.cancel() }
        let problems: [String]
        do {
            problems = try database.writeWithoutTransaction { db in try String.fetchAll(db, sql: "PRAGMA quick_check(20)") }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_INTERRUPT {
            logger.warning("The outbox's quick_check did not finish in time; the outbox is opened unchecked", metadata: [
                "outbox.check_limit_seconds": "\(limit.timeInterval)", "outbox.path": "\(path)",
            ])
            return
        }
        let milliseconds = ((ContinuousClock.now - started).timeInterval * 1000).rounded()
        guard problems == ["ok"] else {
            throw OutboxError.damaged(path: path, reason: "quick_check: " + problems.prefix(5).joined(separator: "; "))
        }
        logger.info("The outbox was checked (quick_check)", metadata: ["outbox.check_ms": "\(milliseconds)", "outbox.path": "\(path)"])
    }

    /// `auto_vacuum = INCREMENTAL`, so that the janitor can give free pages back to the
    /// filesystem (``reclaimFreePages(step:)``). A new file takes it at once (`OutboxPragmas`
    /// sets it before the first table); a file made before it is rebuilt once (`VACUUM`, which
    /// needs as much free disk as the file's size). A rebuild that fails (a full disk) leaves the
    /// file as it was, with a warning: the outbox works without, only its file does not shrink.
    private static func enableIncrementalVacuum(_ database: DatabasePool, path: String, logger: Logger) throws {
        let mode = try database.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") }
        guard mode != 2 else { return }
        let started = ContinuousClock.now
        do {
            try database.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                try db.execute(sql: "VACUUM")
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL || error.extendedResultCode == .SQLITE_IOERR_WRITE {
            logger.warning("The outbox could not be rebuilt for incremental vacuum; its file will not shrink as it empties", metadata: [
                "outbox.path": "\(path)", "error": "\(error)",
            ])
            return
        }
        let milliseconds = ((ContinuousClock.now - started).timeInterval * 1000).rounded()
        let now = try database.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") }
        guard now == 2 else {
            logger.warning("The outbox's auto_vacuum did not change after a rebuild; its file will not shrink as it empties", metadata: [
                "outbox.path": "\(path)", "outbox.auto_vacuum": "\(OutboxPragmas.describe("auto_vacuum", now.map(String.init)))",
            ])
            return
        }
        logger.notice("The outbox was rebuilt once so that its file shrinks as it empties (auto_vacuum = INCREMENTAL)", metadata: [
            "outbox.path": "\(path)", "outbox.vacuum_ms": "\(milliseconds)",
        ])
    }

    /// The page size of an existing database, or SQLite's default for a new one: what
    /// `max_page_count` is counted in.
    private static func pageSize(ofDatabaseAt path: String) throws -> Int64 {
        guard let file = FileHandle(forReadingAtPath: path) else { return 4_096 }
        defer { try? file.close() }
        guard let header = try file.read(upToCount: 18), header.count == 18 else { return 4_096 }
        // The header's bytes 16-17, big-endian; 1 stands for 65,536 (sqlite.org/fileformat.html).
        let size = Int64(header[16]) << 8 | Int64(header[17])
        return size == 1 ? 65_536 : max(512, size)
    }

    /// Puts events left in `sending` back to `queued`, due now.
    private func requeueInterrupted() throws -> Int {
        let now = clock.now().millisecondsSince1970
        return try database.write { db in
            // Sending to queued: both waiting, so the count taken at open stays right.
            var waitingChange = 0
            return try EventTransition.requeueInterrupted.apply(where: nil, arguments: ["now": now], in: db, waitingChange: &waitingChange).changed
        }
    }
}
