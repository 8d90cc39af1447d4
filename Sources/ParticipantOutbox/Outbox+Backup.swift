import Foundation
import GRDB
import Logging

/// `participantctl backup`: a consistent copy of the outbox while the daemon runs.
extension Outbox {
    /// A copy of the outbox as one read transaction sees it (SQLite's online backup API, through
    /// GRDB: writes go on meanwhile), checked with `PRAGMA quick_check`, in a new private file
    /// (mode 0600) beside the database, named `<database>.backup-<random>`. The caller streams it
    /// and deletes it; a copy left by a daemon that stopped meanwhile is deleted at the next open.
    /// - Returns: the copy's path.
    public func backup() async throws -> String {
        let path = Self.backupPath(of: lock?.databasePath ?? (NSTemporaryDirectory() + "participantd-outbox"))
        try DatabaseLock.createPrivateFileIfMissing(path)
        do {
            let copy = try DatabaseQueue(path: path)
            defer { try? copy.close() }
            try await database.read { source in try copy.writeWithoutTransaction { destination in try source.backup(to: destination) } }
            let problems = try await copy.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check(20)") }
            guard problems == ["ok"] else {
                throw OutboxError.storage("the backup copy did not pass quick_check: " + problems.prefix(5).joined(separator: "; "))
            }
            return path
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    static let backupMarker = ".backup-"

    static func backupPath(of databasePath: String) -> String {
        databasePath + backupMarker + UUID().uuidString.lowercased()
    }

    /// Deletes the copies `backup()` made for a daemon that stopped before it streamed them: they
    /// hold connection tokens, and no one asks for them any more.
    static func removeLeftoverBackups(of databasePath: String, logger: Logger) {
        let url = URL(fileURLWithPath: databasePath)
        let directory = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + backupMarker
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(prefix) {
            do {
                try FileManager.default.removeItem(atPath: directory + "/" + name)
                logger.notice("A backup copy left by an earlier run was deleted", metadata: ["outbox.backup_path": "\(directory)/\(name)"])
            } catch {
                logger.warning("A backup copy left by an earlier run could not be deleted", metadata: ["outbox.backup_path": "\(directory)/\(name)", "error": "\(error)"])
            }
        }
    }
}
