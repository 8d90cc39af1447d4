import ParticipantInput
import Foundation
import GRDB
import ParticipantWire

/// What the official chat client (amazon-connect-chatjs) does to spare the quota, made durable.
public struct CoalescingRules: Sendable, Equatable {
    /// At most one typing event per connection in this interval; zero turns typing coalescing off.
    public var typingInterval: Duration = .seconds(10)
    /// Duplicate receipts, and delivered receipts for a message already read, are not sent.
    public var receipts = true
    /// A newer receipt of a connection replaces that connection's older waiting receipts: a read
    /// replaces waiting reads and delivered receipts, a delivered waiting delivered receipts.
    public var newestReceiptOnly = true
    /// A delivered receipt becomes due this long after it is accepted, so that a read receipt that
    /// follows at once replaces it (the official client holds it 300 ms); zero: due at once.
    public var deliveredHold: Duration = .milliseconds(300)
    /// The typing interval counts from the sent typing event's request start (as the official
    /// client counts it), not from the service's answer.
    public var typingFromRequestStart = true
    /// When the quota binds, at the same priority the connection served least recently goes first.
    public var fairShare = true

    public init() {}
}

/// Why an event was not sent: the rule that made it redundant, as `stats` and the metrics count
/// the requests each one saved.
public enum CoalescingRule: String, Sendable, CaseIterable {
    /// A typing event within the typing interval of another.
    case typingInterval
    /// The same receipt (type and message) again.
    case duplicateReceipt
    /// A delivered receipt for a message already read, or replaced by its read receipt.
    case deliveredAfterRead
    /// An older waiting receipt of the connection, replaced by a newer one.
    case newestReceiptOnly
    /// A typing event or receipt still waiting when its chat's disconnect arrived: the
    /// participant has left, there is no one to tell.
    case disconnected
}

/// What coalescing decided for a new event.
struct CoalescingDecision {
    /// The new event is not to be sent: this event (ClientToken) already says it.
    var supersededBy: String?
    /// Waiting events (seq) the new event replaces, each with the rule that replaces it.
    var replaced: [(seq: Int64, rule: CoalescingRule)] = []
    /// The rule that made the new event redundant.
    var rule: CoalescingRule?
}

extension Outbox {
    /// The rules, applied inside the submitting transaction. Content types are written into the
    /// SQL, never bound: the partial index `event_typing` is chosen by the content type, and with a
    /// bound one SQLite compiles the statement again at every execution to check the plan.
    ///
    /// - typing: a typing event sent or in flight less than `typingInterval` ago makes a new one
    ///   redundant (superseded by it); otherwise a new one replaces a typing event still queued;
    /// - receipts: a receipt of the same type for the same message already queued, in flight or
    ///   sent makes a new one redundant; so does a read receipt for a delivered one; a new read
    ///   receipt replaces a queued delivered receipt for the same message;
    /// - newest receipt only: a new receipt replaces the connection's older queued receipts that it
    ///   covers (a read: reads and delivered receipts; a delivered: delivered receipts), whatever
    ///   their message. An event in flight is not recalled.
    static func coalesce(
        _ event: ValidatedEvent, connectionHash: String, now: Date, rules: CoalescingRules, in statements: DirectStatements
    ) throws -> CoalescingDecision {
        let db = statements.db
        switch event.contentType {
        case .typing where rules.typingInterval > .zero:
            let windowStart = now.millisecondsSince1970 - Int64(rules.typingInterval.timeInterval * 1000)
            if let recent = try DirectStatement.fetchOne(
                String.self, rules.typingFromRequestStart ? CoalescingSQL.recentTypingFromRequestStart : CoalescingSQL.recentTypingFromAnswer,
                [connectionHash, windowStart], in: statements
            ) {
                return CoalescingDecision(supersededBy: recent, rule: .typingInterval)
            }
            let queued = try DirectStatement.fetchAll(Int64.self, CoalescingSQL.queuedTyping, [connectionHash], in: statements)
            return CoalescingDecision(replaced: queued.map { ($0, .typingInterval) })

        case .messageDelivered, .messageRead:
            let read = event.contentType == .messageRead
            var decision = CoalescingDecision()
            if rules.receipts, let messageId = event.messageId {
                // A delivered receipt says nothing a read receipt has not said already. (The
                // earlier receipt's key alone is looked up: a row with named columns costs a
                // column table per statement, and most receipts find none.)
                if let earlier = try DirectStatement.fetchOne(
                    Int64.self, read ? CoalescingSQL.earlierRead : CoalescingSQL.earlierReceiptCoveringDelivered, [connectionHash, messageId], in: statements
                ), let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT clientToken, contentType FROM event WHERE seq = ?"), arguments: [earlier]) {
                    let sameType = read || row["contentType"] == EventContentType.messageDelivered.rawValue
                    return CoalescingDecision(supersededBy: row["clientToken"], rule: sameType ? .duplicateReceipt : .deliveredAfterRead)
                }
                if read, rules.newestReceiptOnly {
                    // The connection's queued receipts, which a read replaces, include the
                    // delivered receipts of its message: one look-up finds both, those marked.
                    let marked = try DirectStatement.fetchAll(
                        Int64.self, CoalescingSQL.olderReceiptsForReadMarkingDelivered, [messageId, event.instance, connectionHash], in: statements)
                    decision.replaced += marked.map { ($0 >> 1, $0 & 1 == 1 ? .deliveredAfterRead : .newestReceiptOnly) }
                    return decision
                }
                if read {
                    let delivered = try DirectStatement.fetchAll(Int64.self, CoalescingSQL.queuedDelivered, [connectionHash, messageId], in: statements)
                    decision.replaced += delivered.map { ($0, .deliveredAfterRead) }
                }
            }
            if rules.newestReceiptOnly {
                // The connection's waiting events: few, whatever its history holds.
                let older = try DirectStatement.fetchAll(
                    Int64.self, read ? CoalescingSQL.olderReceiptsForRead : CoalescingSQL.olderReceiptsForDelivered, [event.instance, connectionHash], in: statements
                )
                let already = Set(decision.replaced.map(\.seq))
                decision.replaced += older.filter { !already.contains($0) }.map { ($0, .newestReceiptOnly) }
            }
            return decision

        default:
            return CoalescingDecision()
        }
    }

    /// Marks the replaced events `superseded` by `clientToken`; they are never sent.
    /// Supersedes those of `replaced` that are still queued; returns how many were, by rule.
    static func supersede(
        _ replaced: [(seq: Int64, rule: CoalescingRule)], by clientToken: String, now: Int64, in db: Database, waitingChange: inout Int
    ) throws -> [CoalescingRule: Int] {
        var superseded: [CoalescingRule: Int] = [:]
        for (seq, rule) in replaced {
            superseded[rule, default: 0] += try EventTransition.supersede.apply(
                where: "seq = :seq", arguments: ["supersededBy": clientToken, "now": now, "seq": seq], in: db, waitingChange: &waitingChange
            ).changed
        }
        return superseded
    }
}

/// The coalescing rules' statements, written once: built at each call, their text cost more than
/// the look-ups themselves (and `cachedStatement` hashes it at each call either way).
private enum CoalescingSQL {
    /// Queued, sending or sent. (Not a list of three: SQLite would build a temporary table for
    /// it at every execution.)
    static let live = "(\(Outbox.waiting) OR state = \(EventState.sent.sql))"
    static let typing = sqlLiterals([.typing])

    /// A typing event in flight, or sent after `?` (the window's start): by the request's start
    /// (its lease) or by the service's answer.
    static let recentTypingFromRequestStart = DirectSQL(recentTyping(start: "COALESCE(leasedAt, updatedAt)"))
    static let recentTypingFromAnswer = DirectSQL(recentTyping(start: "updatedAt"))
    private static func recentTyping(start: String) -> String {
        """
        SELECT clientToken FROM event INDEXED BY event_typing
        WHERE connectionHash = ? AND contentType = \(typing)
          AND (state = \(EventState.sending.sql) OR (state = \(EventState.sent.sql) AND \(start) > ?))
        ORDER BY seq DESC LIMIT 1
        """
    }
    static let queuedTyping = DirectSQL("SELECT seq FROM event INDEXED BY event_typing WHERE connectionHash = ? AND contentType = \(typing) AND state = \(EventState.queued.sql)")

    /// The earliest live receipt for the same message that covers a new one.
    static let earlierRead = DirectSQL(earlierReceipt(covering: [.messageRead]))
    static let earlierReceiptCoveringDelivered = DirectSQL(earlierReceipt(covering: [.messageDelivered, .messageRead]))
    private static func earlierReceipt(covering types: [EventContentType]) -> String {
        """
        SELECT seq FROM event INDEXED BY event_receipt
        WHERE connectionHash = ? AND messageId = ? AND contentType IN (\(sqlLiterals(types))) AND \(live)
        ORDER BY seq LIMIT 1
        """
    }
    static let queuedDelivered = DirectSQL("""
        SELECT seq FROM event INDEXED BY event_receipt
        WHERE connectionHash = ? AND messageId = ? AND contentType = \(sqlLiterals([.messageDelivered])) AND state = \(EventState.queued.sql)
        """)

    /// The connection's queued receipts a new one replaces: a read, reads and delivered receipts; a delivered, delivered receipts.
    static let olderReceiptsForRead = DirectSQL(olderReceipts([.messageRead, .messageDelivered]))
    static let olderReceiptsForDelivered = DirectSQL(olderReceipts([.messageDelivered]))
    /// The same as `olderReceiptsForRead`, each as `seq * 2 + 1` when it is a delivered receipt
    /// of the message `?` (the first argument), `seq * 2` otherwise. (One integer column: a row of
    /// two costs GRDB a column table, about 5,400 instructions a look-up.)
    static let olderReceiptsForReadMarkingDelivered = DirectSQL(olderReceipts(
        [.messageRead, .messageDelivered], column: "seq * 2 + (contentType = \(sqlLiterals([.messageDelivered])) AND messageId IS ?)"))
    private static func olderReceipts(_ types: [EventContentType], column: String = "seq") -> String {
        """
        SELECT \(column) FROM event INDEXED BY event_waiting_by_connection
        WHERE instance = ? AND connectionHash = ? AND \(Outbox.waiting)
          AND state = \(EventState.queued.sql) AND contentType IN (\(sqlLiterals(types)))
        """
    }

    /// Content types as SQL string literals (`'a', 'b'`): constants of ours, with no quote in them.
    private static func sqlLiterals(_ types: [EventContentType]) -> String {
        types.map { "'\($0.rawValue)'" }.joined(separator: ", ")
    }
}
