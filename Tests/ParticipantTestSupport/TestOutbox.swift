import Foundation
import GRDB
import Logging
import ParticipantInput
import ParticipantWire
import ParticipantOutbox

/// Where a test's outbox keeps its events.
package enum TestOutboxStorage {
    /// GRDB's in-memory `DatabaseQueue`: the outbox's logic, without its file.
    case memory
    /// A file in a temporary folder of its own, removed afterwards: the file's settings in force.
    case temporaryFile
    /// `outbox.sqlite` in the test's folder, which outlives this outbox (reopened, inspected).
    case file(in: TemporaryDirectory)
}

/// Opens an outbox with `clock`, runs its writer, and closes both after `body`.
package func withTestOutbox<T>(
    clock: ManualClock,
    storage: TestOutboxStorage = .memory,
    limits: OutboxLimits = OutboxLimits(),
    coalescing: CoalescingRules = .perMessage,
    deadlines: EventDeadlines = EventDeadlines(),
    _ body: (Outbox) async throws -> T
) async throws -> T {
    let outbox: Outbox
    var temporary: TemporaryDirectory?
    defer { temporary?.remove() }
    switch storage {
    case .memory:
        outbox = try Outbox.open(database: DatabaseQueue(), deadlines: deadlines, limits: limits, coalescing: coalescing, clock: clock.wallClock, logger: Logger(label: "test"))
    case .temporaryFile, .file:
        let directory: TemporaryDirectory
        if case .file(let given) = storage {
            directory = given
        } else {
            directory = try TemporaryDirectory()
            temporary = directory
        }
        outbox = try Outbox.open(
            path: directory.path + "/outbox.sqlite", deadlines: deadlines, limits: limits, coalescing: coalescing, clock: clock.wallClock, logger: Logger(label: "test")
        )
    }
    let writer = Task { try await outbox.writer.run() }
    do {
        let result = try await body(outbox)
        writer.cancel()
        _ = try? await writer.value
        return result
    } catch {
        writer.cancel()
        _ = try? await writer.value
        throw error
    }
}

extension CoalescingRules {
    /// The rules per message and typing interval only: no newest-receipt rule, no hold of delivered
    /// receipts. For tests of other things (order, leases, bounds) that send several receipts on one
    /// connection and expect each to be sent; the rules of one receipt over another are tested on
    /// their own (`ReceiptCoalescingTests`).
    package static var perMessage: CoalescingRules {
        var rules = CoalescingRules()
        rules.newestReceiptOnly = false
        rules.deliveredHold = .zero
        return rules
    }
}

/// Validates and stores an event (a receipt gets content for `message`); fails unless it is new.
@discardableResult
package func submitEvent(
    _ outbox: Outbox, _ type: EventContentType, _ token: String, message: String = "m", connection: String = "c"
) async throws -> StoredEvent {
    let event = try EventValidator.validate(EventSubmission(
        contentType: type.rawValue, content: type.isReceipt ? receipt(message) : nil, clientToken: token, connectionToken: connection
    ))
    guard case .created(let stored) = try await outbox.submit(event) else { throw TimedOut(description: "\(token) not created") }
    return stored
}

/// An event's state and what superseded it.
package func stateOf(_ outbox: Outbox, _ token: String) async throws -> (EventState, String?) {
    guard let event = try await outbox.event(clientToken: token) else { throw TimedOut(description: "no event \(token)") }
    return (event.state, event.supersededBy)
}

/// An outbox file with a few events, then one page's header overwritten, as a bad disk or a
/// stray write would leave it.
package func damagedOutbox(in directory: TemporaryDirectory) async throws -> String {
    let clock = ManualClock()
    try await withTestOutbox(clock: clock, storage: .file(in: directory)) { outbox in
        for index in 0..<50 { try await submitEvent(outbox, .messageRead, "e\(index)", message: "m\(index)", connection: "c\(index)") }
    }
    let path = directory.path + "/outbox.sqlite"
    guard let file = FileHandle(forUpdatingAtPath: path) else { throw TimedOut(description: "cannot open \(path)") }
    defer { try? file.close() }
    // The last page's b-tree header: a page no statement of the opening reads (an index's),
    // so that only the check finds it.
    let size = try file.seekToEnd()
    try file.seek(toOffset: size - 4_096)
    try file.write(contentsOf: Data(repeating: 0xA5, count: 16))
    return path
}

/// A migration no version of this code knows: what a newer participantd's would look like.
package let laterMigration = "v99: from a later version"

/// Marks the outbox file at `path` as a newer participantd would leave it: one more migration
/// applied (``laterMigration``), nothing else changed.
package func markMigratedByANewerVersion(databaseAt path: String) async throws {
    let queue = try DatabaseQueue(path: path)
    try await queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES (?)", arguments: [laterMigration]) }
    try queue.close()
}

/// The ClientTokens stored in the outbox file at `path`, read without opening an outbox.
package func storedClientTokens(databaseAt path: String) async throws -> [String] {
    let queue = try DatabaseQueue(path: path)
    defer { try? queue.close() }
    return try await queue.read { db in try String.fetchAll(db, sql: "SELECT clientToken FROM event ORDER BY seq") }
}
