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
            try Self.syncData(fd, path: path)
        }
    }

    /// `fdatasync(fd)`, again when a signal interrupts it.
    /// - Throws: ``WALSyncError`` when it fails: not to be retried (see ``sync()``).
    static func syncData(_ fd: Int32, path: String) throws(WALSyncError) {
        while fdatasync(fd) != 0 {
            guard errno == EINTR else { throw WALSyncError(operation: "fdatasync", path: path, errno: errno) }
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

/// The WAL's room written again after a scrub empties it, so that the commits until the next
/// scrub overwrite written blocks instead of appending to the file.
///
/// A sync of a write past a file's end must also commit the file's new size (ext4 journals it):
/// on this machine's disk a 40 KiB commit's `fdatasync` took 0.20 to 0.28 ms appended and 0.13 to
/// 0.15 ms overwritten (BENCHMARKS.md, "Issue 31, eighth round"). The scrub's `TRUNCATE`
/// checkpoint leaves the WAL empty every 30 s, so without this every commit of a daemon whose
/// WAL does not reach `wal_autocheckpoint` within 30 s appends.
///
/// Safe for SQLite: its recovery reads the WAL's frames from the start and stops at the first
/// that is not valid (zeros are not), exactly as it does after the stale frames a WAL restart
/// leaves; the next commit writes a new header over the zeros. And for erasure: zeros, not the
/// frames the checkpoint emptied. Done on the writer's connection, after the checkpoint, before
/// any other write.
enum WALRefill {
    /// The most bytes written back: the header and `wal_autocheckpoint`'s frames of a 4 KiB
    /// page (each with its 24-byte frame header), the size a busy WAL reaches before SQLite
    /// copies it back and starts it again.
    static let maxBytes = 32 + Int64(OutboxPragmas.walAutocheckpointPages) * (4_096 + 24)

    /// What to write back after the WAL of `sizeBefore` bytes was emptied: its own size, capped.
    static func bytes(sizeBefore: Int64) -> Int64 {
        min(max(0, sizeBefore), maxBytes)
    }

    /// The size of the file at `path`; 0 when there is none.
    static func size(of path: String) -> Int64 {
        var status = stat()
        guard stat(path, &status) == 0 else { return 0 }
        return Int64(status.st_size)
    }

    /// Writes `bytes` zeros at the start of the empty WAL at `path` and syncs them; nothing when
    /// `bytes` is 0 or the WAL is not empty (a write came first). On a full disk it stops where
    /// the room ended (the commits then grow the file, as without it). Blocks.
    /// - Throws: ``WALSyncError`` when the WAL cannot be opened, written (but for a full disk)
    ///   or synced.
    static func fill(_ path: String, bytes: Int64) throws(WALSyncError) {
        guard bytes > 0 else { return }
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WALSyncError(operation: "open", path: path, errno: errno) }
        defer { _ = close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw WALSyncError(operation: "fstat", path: path, errno: errno) }
        guard status.st_size == 0 else { return }
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var offset: Int64 = 0
        while offset < bytes {
            let length = Int(min(Int64(zeros.count), bytes - offset))
            let written = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, length, off_t(offset)) }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == ENOSPC || errno == EDQUOT { break }
                throw WALSyncError(operation: "pwrite", path: path, errno: errno)
            }
            offset += Int64(written)
        }
        try WALSync.syncData(fd, path: path)
    }
}
