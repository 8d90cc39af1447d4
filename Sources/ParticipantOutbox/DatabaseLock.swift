#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// An exclusive `flock` on `<database>.lock`, held while the outbox is open.
///
/// Two daemons draining one outbox would send every event twice over; the second one stops at
/// start instead. SQLite's own locks do not prevent this (WAL lets both read and write in turn).
///
/// The writer releases it when it stops (``release()``): an outbox whose writer has stopped cannot
/// write, so it cannot send anything twice either, and a new outbox may open the database at once
/// even while reads of the old one are still winding down.
final class DatabaseLock: Sendable {
    let path: String
    /// The database the lock keeps.
    let databasePath: String
    /// The locked file; -1 once released.
    private let descriptor: Mutex<Int32>

    init(databasePath: String) throws(OutboxError) {
        path = databasePath + ".lock"
        self.databasePath = databasePath
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw OutboxError.open(path: databasePath, reason: "cannot create the lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno == EWOULDBLOCK
                ? "another participantd is using this database (\(path) is locked)"
                : "cannot lock \(path): \(String(cString: strerror(errno)))"
            close(fd)
            throw OutboxError.open(path: databasePath, reason: reason)
        }
        descriptor = Mutex(fd)
    }

    /// Unlocks the database; later calls do nothing.
    ///
    /// Unlocked explicitly before the close: the lock belongs to the open file, which a child
    /// process forked at that moment (before its exec closes the descriptor) shares for a while,
    /// and a close alone would leave the lock held until the child's copy went too.
    func release() {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit {
        release()
    }

    /// Creates an empty database file readable by its owner only, unless one exists.
    ///
    /// The outbox holds connection tokens, which are credentials; SQLite gives its `-wal` and
    /// `-shm` files the database file's permissions, so they stay private too. An existing file
    /// keeps the permissions an administrator gave it.
    static func createPrivateFileIfMissing(_ path: String) throws(OutboxError) {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
        } else if errno != EEXIST {
            throw OutboxError.open(path: path, reason: "cannot create the database file: \(String(cString: strerror(errno)))")
        }
    }
}
