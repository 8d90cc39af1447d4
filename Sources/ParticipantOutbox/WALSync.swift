#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// What makes the transactions committed so far durable; ``OutboxWriter`` acknowledges a
/// commit's writes only after a call that began after the commit has returned. ``WALSync`` in the
/// daemon; tests give a stand-in that blocks or fails.
protocol CommitSync: Sendable {
    /// Returns once every transaction committed before the call is on disk; throws when that
    /// cannot be known (the writer then stops: ``OutboxWriter``'s fail-stop).
    func sync() throws
}

/// The outbox's WAL, opened a second time so that its commits can be synced outside SQLite: the
/// writer commits with `synchronous=NORMAL` (SQLite writes the WAL's frames and returns), and a
/// commit's writes are acknowledged only after ``sync()`` has returned, which makes every frame
/// written before it durable. That is what `synchronous=FULL` does inside the commit; done here,
/// the next transaction is written while the last one's sync runs (``OutboxWriter``).
///
/// `fdatasync` works on the file, not on the descriptor: it writes back every dirty page of the
/// WAL, written through SQLite's own descriptor or any other. The WAL keeps its inode while the
/// writer's connection is open (SQLite truncates and rewrites it, and deletes it only when the
/// last connection closes); a WAL found deleted is opened again by its path.
///
/// With `synchronous=NORMAL` SQLite still syncs what the WAL's recovery needs on its own: the
/// WAL's header (and its directory) when it starts or restarts, the WAL before each checkpoint
/// and the database file after it.
final class WALSync: CommitSync {
    /// The WAL's path: the database's, with `-wal`.
    let path: String
    /// The descriptor, `-1` until the first sync.
    private let descriptor = Mutex<Int32>(-1)

    init(databasePath: String) {
        path = databasePath + "-wal"
    }

    deinit {
        descriptor.withLock { fd in
            if fd >= 0 { _ = close(fd) }
        }
    }

    /// Writes the WAL's dirty pages to disk and waits for them: every commit that returned before
    /// this call is durable once it returns. Blocks; never on an event loop or the shared pool.
    /// - Throws: ``WALSyncError`` when the WAL cannot be opened or synced. A failed sync must
    ///   not be retried: Linux reports a write-back error once and may have dropped the pages.
    func sync() throws {
        try descriptor.withLock { fd throws(WALSyncError) in
            if fd >= 0 {
                var status = stat()
                if fstat(fd, &status) != 0 || status.st_nlink == 0 {
                    _ = close(fd)
                    fd = -1
                }
            }
            if fd < 0 {
                fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw WALSyncError(operation: "open", path: path, errno: errno) }
            }
            while fdatasync(fd) != 0 {
                guard errno == EINTR else { throw WALSyncError(operation: "fdatasync", path: path, errno: errno) }
            }
        }
    }
}

/// The WAL could not be opened or synced: the commits since the last sync are not durable.
struct WALSyncError: Error, CustomStringConvertible {
    var operation: String
    var path: String
    var errno: Int32

    var description: String {
        "\(operation) of \(path) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}
