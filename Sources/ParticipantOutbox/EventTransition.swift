import GRDB
import ParticipantWire

/// The steps of an event's life in the outbox, as one table: from which states, to which state,
/// and what else each step writes. Every state change of the outbox is one of these, applied by
/// ``apply(where:indexedBy:arguments:returning:in:waitingChange:)``: its SQL is generated here,
/// so a change the table does not list cannot be written, and the waiting count moves with the
/// state (``waitingDelta``), not by hand at each call site.
///
/// An event is stored `queued` (``Outbox/submit(_:)``) and leaves the table only when retention
/// deletes it or an operator does (`participantctl delete`).
struct EventTransition: Sendable, Equatable, CustomStringConvertible {
    /// What the step is, for tests and messages.
    let name: String
    /// The states it applies to: all waiting or all not, so that it moves the waiting count the
    /// same way for every row it changes (a test checks this for every row of the table).
    let from: [EventState]
    let to: EventState
    /// The other columns it sets, as SQL assignments with named arguments (`nextAttemptAt = :at`).
    let sets: [String]

    var description: String { "\(name): \(from.map(\.rawValue).joined(separator: "|")) -> \(to.rawValue)" }

    /// How each row it changes moves the number of waiting events (queued or sending).
    var waitingDelta: Int { (to.isWaiting ? 1 : 0) - (from[0].isWaiting ? 1 : 0) }

    // MARK: The table

    /// What a step that ends an event with an error writes: the error, no next attempt, and its
    /// connection token erased (a credential kept no longer than it is needed); its content stays
    /// until retention, so that an operator can see it and send it again with a new token
    /// (`participantctl retry --connection-token`).
    private static let endedWithError = [
        "lastErrorCode = :code", "lastErrorMessage = :message", "nextAttemptAt = NULL", "connectionToken = NULL", "updatedAt = :now",
    ]

    /// The sender takes a due event: one more attempt, leased now.
    static let lease = EventTransition(
        name: "lease", from: [.queued], to: .sending, sets: ["attempts = attempts + 1", "updatedAt = :now", "leasedAt = :now"]
    )
    /// The service accepted it: its answer kept, its content and connection token erased (the
    /// digest stays, for deduplication).
    static let send = EventTransition(
        name: "send", from: [.sending], to: .sent,
        sets: ["serviceId = :id", "absoluteTime = :absoluteTime", "processingStatus = :processingStatus", "lastErrorCode = NULL", "lastErrorMessage = NULL",
               "nextAttemptAt = NULL", "content = NULL", "connectionToken = NULL", "updatedAt = :now"]
    )
    /// The attempt failed for now: queued again for a later attempt, with the error.
    static let retryLater = EventTransition(
        name: "retryLater", from: [.sending], to: .queued,
        sets: ["nextAttemptAt = :at", "lastErrorCode = :code", "lastErrorMessage = :message", "updatedAt = :now"]
    )
    /// The service refused it for good.
    static let fail = EventTransition(name: "fail", from: [.sending], to: .failed, sets: endedWithError)
    /// Its deadline came before the next attempt could.
    static let expireAttempt = EventTransition(name: "expireAttempt", from: [.sending], to: .expired, sets: endedWithError)
    /// Refused with the connection: a queued event of a connection the service refused for good.
    static let failWithConnection = EventTransition(name: "failWithConnection", from: [.queued], to: .failed, sets: endedWithError)
    /// A queued event whose deadline passed: never sent late.
    static let expireOverdue = EventTransition(
        name: "expireOverdue", from: [.queued], to: .expired,
        sets: ["nextAttemptAt = NULL", "connectionToken = NULL", "updatedAt = :now", "lastErrorCode = 'DeadlineExceeded'",
               "lastErrorMessage = 'the deadline for this content type passed before the service accepted the event'"]
    )
    /// A newer event made it redundant before it was sent (coalescing): content and token erased.
    static let supersede = EventTransition(
        name: "supersede", from: [.queued], to: .superseded,
        sets: ["supersededBy = :supersededBy", "nextAttemptAt = NULL", "content = NULL", "connectionToken = NULL", "updatedAt = :now"]
    )
    /// In flight when the daemon stopped: queued again, due now, sent with the same ClientToken.
    static let requeueInterrupted = EventTransition(
        name: "requeueInterrupted", from: [.sending], to: .queued, sets: ["nextAttemptAt = :now", "updatedAt = :now"]
    )
    /// `participantctl hold`.
    static let hold = EventTransition(name: "hold", from: [.queued], to: .held, sets: ["nextAttemptAt = NULL", "updatedAt = :now"])
    /// `participantctl release`: due now.
    static let release = EventTransition(name: "release", from: [.held], to: .queued, sets: ["nextAttemptAt = :now", "updatedAt = :now"])
    /// Held longer than `outbox.holdMaxSeconds`: it ends, and its connection token (a credential)
    /// with it; `:message` says why.
    static let expireHeld = EventTransition(
        name: "expireHeld", from: [.held], to: .expired,
        sets: ["nextAttemptAt = NULL", "updatedAt = :now", "connectionToken = NULL", "lastErrorCode = 'HeldTooLong'", "lastErrorMessage = :message"]
    )
    /// `participantctl retry`: due now, with a new deadline, the last error cleared; with a
    /// connection token (`:token`, its hash `:hash`; both `NULL` for a chat named by a participant
    /// token whose connection the daemon still keeps), as the operator gave it.
    static let retryByOperator = EventTransition(
        name: "retryByOperator", from: [.failed, .expired], to: .queued,
        sets: ["nextAttemptAt = :now", "deadline = :deadline", "lastErrorCode = NULL", "lastErrorMessage = NULL", "updatedAt = :now",
               "connectionToken = :token", "connectionHash = COALESCE(:hash, connectionHash)",
               "viaParticipant = CASE WHEN :token IS NULL THEN viaParticipant ELSE 0 END"]
    )

    static let all: [EventTransition] = [
        lease, send, retryLater, fail, expireAttempt, failWithConnection, expireOverdue, supersede,
        requeueInterrupted, hold, release, expireHeld, retryByOperator,
    ]

    /// Whether the table lets an event go from `from` to `to`.
    static func allows(from: EventState, to: EventState) -> Bool {
        all.contains { $0.from.contains(from) && $0.to == to }
    }

    // MARK: Applying one

    /// The statement: the rows `selection` names that are in one of ``from``, set to ``to`` with
    /// ``sets``. `selection` is the call site's choice of rows (a key, or a condition shaped for
    /// the partial index it names in `indexedBy`); the state condition is added here.
    func sql(where selection: String?, indexedBy index: String? = nil, returning: Bool) -> String {
        // `+state`: a condition the planner must not use to pick an index. As `state = ...` it
        // could prefer an index of every row in that state (schema v1 to v13 had one) to the
        // selection's key or the index the call site names, and a lease would cost in proportion
        // to the backlog (OutboxBacklogCostTests). Not `IN (...)`: for a list of more than two
        // SQLite builds a temporary table at every execution.
        let states = from.count == 1 ? "+state = \(from[0].sql)" : "(" + from.map { "+state = \($0.sql)" }.joined(separator: " OR ") + ")"
        return """
            UPDATE event\(index.map { " INDEXED BY \($0)" } ?? "")
            SET state = \(to.sql), \(sets.joined(separator: ", "))
            WHERE \(selection.map { "(\($0)) AND " } ?? "")\(states)\(returning ? "\nRETURNING *" : "")
            """
    }

    /// Applies the step to the rows `selection` names, in the caller's write, and moves
    /// `waitingChange` by the rows it changed; returns them (`returning`) or an empty list.
    @discardableResult
    func apply(
        where selection: String?, indexedBy index: String? = nil, arguments: StatementArguments,
        returning: Bool = false, in db: Database, waitingChange: inout Int
    ) throws -> (changed: Int, rows: [StoredEvent]) {
        let statement = try db.cachedStatement(sql: sql(where: selection, indexedBy: index, returning: returning))
        if returning {
            let rows = try StoredEvent.fetchAll(statement, arguments: arguments)
            waitingChange += waitingDelta * rows.count
            return (rows.count, rows)
        }
        try statement.execute(arguments: arguments)
        let changed = db.changesCount
        waitingChange += waitingDelta * changed
        return (changed, [])
    }
}

extension EventState {
    /// Queued or sending: counted against the outbox's capacity, and in order per connection.
    var isWaiting: Bool { self == .queued || self == .sending }
}
