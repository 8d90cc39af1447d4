#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on `<database>.lock`, held while the outbox is open.
///
/// Two daemons draining one outbox would send every event twice over; the second one stops at
/// start instead. SQLite's own locks do not prevent this (WAL lets both read and write in turn).
final class DatabaseLock: Sendable {
    let path: String
    private let descriptor: Int32

    init(databasePath: String) throws(OutboxError) {
        path = databasePath + ".lock"
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
        descriptor = fd
    }

    deinit {
        close(descriptor)
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
