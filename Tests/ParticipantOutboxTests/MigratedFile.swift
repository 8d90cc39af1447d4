import GRDB
@testable import ParticipantOutbox
import ParticipantTestSupport

/// An outbox file in `directory` as an earlier version left it: migrated by the outbox's own
/// migrator up to `version` and no further. The caller writes its rows, closes the queue, and
/// opens the outbox on the directory to run the later migrations.
func outboxFile(migratedUpTo version: String, in directory: TemporaryDirectory) throws -> DatabaseQueue {
    let queue = try DatabaseQueue(path: directory.path + "/outbox.sqlite")
    try OutboxSchema.migrator.migrate(queue, upTo: version)
    return queue
}
