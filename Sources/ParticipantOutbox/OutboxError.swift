import GRDB

/// Why the outbox could not do what it was asked.
public enum OutboxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The writer is shut down: the daemon is stopping.
    case closed
    /// SQLite refused a write or a read; nothing of that write was stored.
    case storage(String)
    /// The database could not be opened or migrated.
    case open(path: String, reason: String)
    /// `capacity` events are waiting already; nothing was stored.
    case full(capacity: Int)
    /// The submitting peer has `capacity` waiting items, its share (`share`) of the outbox;
    /// nothing was stored. Other peers still get in.
    case peerFull(share: Double, capacity: Int)
    /// The disk, or the database's size limit (`outbox.maxDatabaseMegabytes`), is full: nothing of
    /// that write was stored. Writes succeed again once space returns.
    case storageFull(String)
    /// A sync or an I/O error while committing: nothing of that commit was acknowledged, and the
    /// writer stopped for good (fail-stop). After a failed `fdatasync` the kernel may have dropped
    /// the pages it could not write and cleared the error, so a later commit could succeed over a
    /// hole; only a restart, SQLite's recovery reading back what the disk holds, is trusted.
    case failed(String)
    /// The database file is damaged (`PRAGMA quick_check` at open found a problem, or SQLite
    /// reported `SQLITE_CORRUPT`/`SQLITE_NOTADB`): the outbox does not open on it.
    case damaged(path: String, reason: String)
    /// A newer participantd migrated the database (`unknown`: its migrations this version does
    /// not know; `known`: this version's last): the outbox does not open on it.
    case newerSchema(path: String, unknown: [String], known: String)

    public var description: String {
        switch self {
        case .closed: "the outbox is closed (the daemon is stopping)"
        case .storage(let reason): "the outbox could not store the change: \(reason)"
        case .open(let path, let reason): "cannot open the outbox database at \(path): \(reason)"
        case .full(let capacity): "the outbox holds \(capacity) waiting events, its capacity (limits.capacity)"
        case .peerFull(_, let capacity): "this peer has \(capacity) waiting items, its share of the outbox (access.peerMaxWaitingShare)"
        case .storageFull(let reason): "the outbox's storage is full: \(reason)"
        case .damaged(let path, let reason):
            "the outbox database \(path) is damaged (\(reason)). participantd does not start on it. The way back: restore the last backup "
                + "(participantctl backup; README, \"Backup and restore\"), or move \(path) aside with its -wal and -shm files to start with an empty outbox; "
                + "sqlite3 \(path) .recover may salvage what is readable"
        case .newerSchema(let path, let unknown, let known):
            "the outbox database \(path) was migrated by a newer participantd (\(unknown.joined(separator: ", "))), which this version "
                + "(up to \(known)) does not know. participantd does not start on it. The way back: install that version again, "
                + "or restore a backup this version made (participantctl backup; README, \"Backup and restore\")"
        case .failed(let reason): "the outbox's storage failed (\(reason)); participantd stopped writing and exits, to restart from what is on disk"
        }
    }
}

extension OutboxError {
    /// SQLite's "database or disk is full" (the disk, or `max_page_count`) as `storageFull`;
    /// other errors as they are.
    static func classify(_ error: any Error) -> any Error {
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_FULL {
            return OutboxError.storageFull(error.message ?? "database or disk is full")
        }
        return error
    }

    /// The failures after which no later write is trusted: an I/O error (a failed read, write or
    /// sync: `SQLITE_IOERR` and its extended codes such as `SQLITE_IOERR_FSYNC`), a damaged file
    /// (`SQLITE_CORRUPT`, `SQLITE_NOTADB`). `nil` for every other error (a full disk included:
    /// nothing is lost there, and writes succeed again once space returns).
    /// Whether SQLite reported the file damaged (`SQLITE_CORRUPT`, `SQLITE_NOTADB`).
    static func isDamage(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    }

    static func storageFailure(_ error: any Error) -> String? {
        guard let error = error as? DatabaseError else { return nil }
        switch error.resultCode {
        case .SQLITE_IOERR, .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return "SQLite \(error.extendedResultCode): \(error.message ?? "no message")"
        default:
            return nil
        }
    }
}
