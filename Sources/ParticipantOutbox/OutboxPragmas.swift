import GRDB

/// When a commit reaches the disk, and so what an acknowledged event survives.
///
/// SQLite runs with `synchronous=NORMAL` either way: it syncs the WAL before each checkpoint, the
/// database file after it, and the WAL's header when the WAL starts over, so a power loss never
/// leaves a damaged file. What the setting adds is the outbox's own.
public enum CommitDurability: String, Sendable, Equatable {
    /// Every commit's WAL synced (`fdatasync`, ``WALSync``) before its events are acknowledged,
    /// as `synchronous=FULL` would inside the commit, so an acknowledged event survives a power
    /// loss, a VM reset or a kernel panic. The default.
    case syncEveryCommit
    /// The WAL is synced only at checkpoints. A crash of the daemon loses nothing (the kernel
    /// still holds its writes), but a power loss, a VM reset or a kernel panic loses every event
    /// acknowledged since the last checkpoint (`outbox.syncEveryCommit: false`).
    case syncAtCheckpoints
}

/// The SQLite settings the outbox's promises rest on: set on every connection, then read back on
/// the writer once the pool is open.
///
/// Setting is not enough: GRDB's `DatabasePool` turns WAL on after `prepareDatabase` has run and,
/// in the same step, sets `synchronous = NORMAL` on the writer (`Database.setUpWALMode()`), which
/// once silently undid the outbox's `FULL` (the outbox now asks for NORMAL and syncs each commit
/// itself: ``OutboxWriter``). A setting is trusted only where it takes effect: on the writer,
/// after the pool is open, and the outbox refuses to open when one is not in force.
struct OutboxPragmas: Sendable, Equatable {
    /// One `PRAGMA name`, the value it must read back as on the writer, and what depends on it.
    struct Setting: Sendable, Equatable {
        var name: String
        var value: String
        /// What it is for, named in the error when it is not in force.
        var purpose: String
        /// Where and when it is set; it is always read back on the writer.
        var scope: Scope = .everyConnection
        /// Whether the outbox refuses to open without it. `auto_vacuum` is not: an older file
        /// takes it only through a rebuild, which a full disk may refuse, and the outbox keeps
        /// its promises without it (its file only does not shrink).
        var enforced = true
    }

    enum Scope: Sendable, Equatable {
        /// Set as each connection opens (`prepareDatabase`), and on the writer again once the pool is open.
        case everyConnection
        /// Set on the writer only, as it opens and again once the pool is open.
        case writer
        /// Set on the writer once the schema is migrated: a size limit set earlier could leave
        /// no room for GRDB's own set-up write or a migration, and the outbox would not open.
        case writerAfterMigrations
        /// Set elsewhere (GRDB turns WAL on); only read back.
        case readOnly
    }

    /// `wal_autocheckpoint` on the writer: the WAL's frames before SQLite copies it back and
    /// starts it again (also what the scrub writes back of it at most, ``WALRefill``).
    static let walAutocheckpointPages = 4_000

    var durability: CommitDurability
    /// `max_page_count` when the database has a size limit (`outbox.maxDatabaseMegabytes`).
    var maxPageCount: Int64?

    /// Every setting, in the order they are applied.
    var settings: [Setting] {
        var settings = [
            Setting(name: "journal_mode", value: "wal", purpose: "readers that never wait for the writer", scope: .readOnly),
            // NORMAL, not FULL, in both durabilities: with `syncEveryCommit` the writer syncs the
            // WAL itself after each commit (``OutboxWriter``), beside the next transaction. OFF
            // would also skip the syncs SQLite's recovery needs (the WAL's header, checkpoints).
            Setting(
                name: "synchronous", value: "1",
                purpose: durability == .syncEveryCommit
                    ? "SQLite's own syncs at checkpoints, the outbox's after every commit (outbox.syncEveryCommit)"
                    : "the WAL synced at checkpoints only (outbox.syncEveryCommit: false)"
            ),
            // Each write of a group commit runs in a savepoint, whose undo pages SQLite keeps in a
            // statement journal: in memory, not in a temporary file written at every write.
            Setting(name: "temp_store", value: "2", purpose: "savepoint journals in memory"),
            // Connection tokens are credentials: the bytes a finished event frees (its token
            // erased, the row deleted) are overwritten with zeros, not left in freed space.
            Setting(name: "secure_delete", value: "1", purpose: "freed connection tokens overwritten", scope: .writer),
            // The writer's page cache holds the hot index pages (16 MiB at most, filled only as
            // used), and the WAL is copied back less often, so a page written by many commits is
            // copied once: both measured in BENCHMARKS.md.
            Setting(name: "cache_size", value: "-16384", purpose: "the writer's page cache", scope: .writer),
            Setting(name: "wal_autocheckpoint", value: String(Self.walAutocheckpointPages), purpose: "how often the WAL is copied back", scope: .writer),
            // Free pages can be given back to the filesystem as the outbox empties. Set before
            // the first table of a new file; an older file is rebuilt once at open (VACUUM).
            Setting(name: "auto_vacuum", value: "2", purpose: "free pages given back to the filesystem as the outbox empties", scope: .writer, enforced: false),
        ]
        if let maxPageCount {
            settings.append(Setting(name: "max_page_count", value: String(maxPageCount), purpose: "the database's size limit (outbox.maxDatabaseMegabytes)", scope: .writerAfterMigrations))
        }
        return settings
    }

    /// Sets what a connection needs (`prepareDatabase`, and the writer again once the pool is
    /// open): every setting of `everyConnection` scope, and on the writer those of `writer` scope.
    func apply(to db: Database) throws {
        let isWriter = !db.configuration.readonly
        for setting in settings where setting.scope == .everyConnection || (setting.scope == .writer && isWriter) {
            try db.execute(sql: "PRAGMA \(setting.name) = \(setting.value)")
        }
    }

    /// Sets what waits for the migrated schema (the size limit), on the writer.
    func applyAfterMigrations(to db: Database) throws {
        for setting in settings where setting.scope == .writerAfterMigrations {
            try db.execute(sql: "PRAGMA \(setting.name) = \(setting.value)")
        }
    }

    /// Each setting as the connection reports it now, and the database's `page_count`.
    func read(from db: Database) throws -> [String: String] {
        var values: [String: String] = [:]
        for name in settings.map(\.name) + ["page_count"] {
            values[name] = try String.fetchOne(db, sql: "PRAGMA \(name)")
        }
        return values
    }

    /// The settings that do not read back as they must, each as a sentence naming the pragma,
    /// what it reads, what it must be and what depends on it; empty when all are in force.
    ///
    /// SQLite never sets `max_page_count` below the database's size (`page_count`): a database
    /// already larger than `outbox.maxDatabaseMegabytes` reads back its own size, which is in
    /// force as the limit (new events get 507 until finished ones are deleted), not a mismatch.
    func mismatches(in actual: [String: String]) -> [String] {
        settings.compactMap { setting in
            guard setting.enforced else { return nil }
            let found = actual[setting.name]
            guard found?.lowercased() != setting.value else { return nil }
            if setting.name == "max_page_count", let found, found == actual["page_count"],
               let size = Int64(found), let asked = Int64(setting.value), size > asked {
                return nil
            }
            return "PRAGMA \(setting.name) is \(Self.describe(setting.name, found)) on the writer, not \(Self.describe(setting.name, setting.value)) (\(setting.purpose))"
        }
    }

    /// A value as SQLite's documentation names it: `2 (FULL)`.
    static func describe(_ name: String, _ value: String?) -> String {
        guard let value else { return "unreadable" }
        let names: [String: [String: String]] = [
            "synchronous": ["0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"],
            "temp_store": ["0": "DEFAULT", "1": "FILE", "2": "MEMORY"],
            "secure_delete": ["0": "OFF", "1": "ON", "2": "FAST"],
            "auto_vacuum": ["0": "NONE", "1": "FULL", "2": "INCREMENTAL"],
        ]
        return names[name]?[value].map { "\(value) (\($0))" } ?? value
    }
}
