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

    public init() {}
}

/// What coalescing decided for a new event.
struct CoalescingDecision {
    /// The new event is not to be sent: this event (ClientToken) already says it.
    var supersededBy: String?
    /// Waiting events (seq) the new event replaces.
    var replaced: [Int64] = []
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
    ///   receipt replaces a queued delivered receipt for the same message.
    static func coalesce(
        _ event: ValidatedEvent, connectionHash: String, now: Date, rules: CoalescingRules, in db: Database
    ) throws -> CoalescingDecision {
        let live = "state IN (\(EventState.queued.sql), \(EventState.sending.sql), \(EventState.sent.sql))"
        switch event.contentType {
        case .typing where rules.typingInterval > .zero:
            let windowStart = now.millisecondsSince1970 - Int64(rules.typingInterval.timeInterval * 1000)
            if let recent = try String.fetchOne(
                db.cachedStatement(sql: """
                    SELECT clientToken FROM event INDEXED BY event_typing
                    WHERE connectionHash = ? AND contentType = \(sqlLiterals([.typing]))
                      AND (state = \(EventState.sending.sql) OR (state = \(EventState.sent.sql) AND updatedAt > ?))
                    ORDER BY seq DESC LIMIT 1
                    """),
                arguments: [connectionHash, windowStart]
            ) {
                return CoalescingDecision(supersededBy: recent)
            }
            let queued = try Int64.fetchAll(
                db.cachedStatement(
                    sql: "SELECT seq FROM event INDEXED BY event_typing WHERE connectionHash = ? AND contentType = \(sqlLiterals([.typing])) AND state = \(EventState.queued.sql)"),
                arguments: [connectionHash]
            )
            return CoalescingDecision(replaced: queued)

        case .messageDelivered, .messageRead:
            guard rules.receipts, let messageId = event.messageId else { return CoalescingDecision() }
            // A delivered receipt says nothing a read receipt has not said already.
            let coveringTypes: [EventContentType] = event.contentType == .messageDelivered
                ? [.messageDelivered, .messageRead]
                : [.messageRead]
            if let earlier = try String.fetchOne(
                db.cachedStatement(sql: """
                    SELECT clientToken FROM event INDEXED BY event_receipt
                    WHERE connectionHash = ? AND messageId = ? AND contentType IN (\(sqlLiterals(coveringTypes))) AND \(live)
                    ORDER BY seq LIMIT 1
                    """),
                arguments: [connectionHash, messageId]
            ) {
                return CoalescingDecision(supersededBy: earlier)
            }
            guard event.contentType == .messageRead else { return CoalescingDecision() }
            let delivered = try Int64.fetchAll(
                db.cachedStatement(sql: """
                    SELECT seq FROM event INDEXED BY event_receipt
                    WHERE connectionHash = ? AND messageId = ? AND contentType = \(sqlLiterals([.messageDelivered])) AND state = \(EventState.queued.sql)
                    """),
                arguments: [connectionHash, messageId]
            )
            return CoalescingDecision(replaced: delivered)

        default:
            return CoalescingDecision()
        }
    }

    /// Content types as SQL string literals (`'a', 'b'`): constants of ours, with no quote in them.
    private static func sqlLiterals(_ types: [EventContentType]) -> String {
        types.map { "'\($0.rawValue)'" }.joined(separator: ", ")
    }

    /// Marks the replaced events `superseded` by `clientToken`; they are never sent.
    /// Supersedes those of `seqs` that are still queued; returns how many were.
    static func supersede(_ seqs: [Int64], by clientToken: String, now: Int64, in db: Database) throws -> Int {
        var superseded = 0
        for seq in seqs {
            try db.cachedStatement(sql: """
                UPDATE event SET state = \(EventState.superseded.sql), supersededBy = ?, nextAttemptAt = NULL,
                    connectionToken = NULL, updatedAt = ?
                WHERE seq = ? AND state = \(EventState.queued.sql)
                """).execute(arguments: [clientToken, now, seq])
            superseded += db.changesCount
        }
        return superseded
    }
}
