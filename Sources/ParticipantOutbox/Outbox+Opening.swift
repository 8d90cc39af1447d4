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

        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        let maxDatabaseBytes = Int64(limits.maxDatabaseMegabytes) * 1_048_576
        configuration.prepareDatabase { db in
            // Sync the WAL on every commit: an acknowledged event survives a power loss too.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Each write of a group commit runs in a savepoint, whose undo pages SQLite keeps in a
            // statement journal: in memory, not in a temporary file written at every write.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            if !db.configuration.readonly {
                // Connection tokens are credentials: the bytes a finished event frees (its token
                // erased, the row deleted) are overwritten with zeros, not left in freed space.
                try db.execute(sql: "PRAGMA secure_delete = ON")
                // The writer's page cache holds the hot index pages (16 MiB at most, filled only as
                // used), and the WAL is copied back less often, so a page written by many commits
                // is copied once: both measured in BENCHMARKS.md.
                try db.execute(sql: "PRAGMA cache_size = -16384")
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 4000")
            }
            if maxDatabaseBytes > 0 {
                let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4_096
                try db.execute(sql: "PRAGMA max_page_count = \(max(1, maxDatabaseBytes / pageSize))")
            }
        }
        let database: DatabasePool
        do {
            database = try DatabasePool(path: path, configuration: configuration)
            try OutboxSchema.migrator.migrate(database)
        } catch {
            throw OutboxError.open(path: path, reason: String(describing: error))
        }

        let waitingNow = try database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE state IN (\(EventState.queued.sql), \(EventState.sending.sql))") ?? 0
        }
        let outbox = Outbox(
            writer: OutboxWriter(database: database, lock: lock, logger: logger),
            database: database, deadlines: deadlines, rules: Rules(limits: limits, coalescing: coalescing), waiting: WaitingCount(waitingNow),
            clock: clock, lock: lock, storage: StorageState(logger: logger), metrics: metrics
        )
        let requeued = try outbox.requeueInterrupted()
        if requeued > 0 {
            logger.notice("Events interrupted by a stop were queued again", metadata: ["outbox.requeued": "\(requeued)"])
        }
        return outbox
    }

    /// Puts events left in `sending` back to `queued`, due now.
    private func requeueInterrupted() throws -> Int {
        let now = clock.now().millisecondsSince1970
        return try database.write { db in
            try db.execute(
                sql: "UPDATE event SET state = \(EventState.queued.sql), nextAttemptAt = ?, updatedAt = ? WHERE state = \(EventState.sending.sql)",
                arguments: [now, now]
            )
            return db.changesCount
        }
    }
}
