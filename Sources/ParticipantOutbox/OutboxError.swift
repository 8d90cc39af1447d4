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

    public var description: String {
        switch self {
        case .closed: "the outbox is closed (the daemon is stopping)"
        case .storage(let reason): "the outbox could not store the change: \(reason)"
        case .open(let path, let reason): "cannot open the outbox database at \(path): \(reason)"
        case .full(let capacity): "the outbox holds \(capacity) waiting events, its capacity (limits.capacity)"
        case .peerFull(_, let capacity): "this peer has \(capacity) waiting items, its share of the outbox (access.peerMaxWaitingShare)"
        case .storageFull(let reason): "the outbox's storage is full: \(reason)"
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
}
