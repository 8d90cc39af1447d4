import Foundation
import GRDB
import Logging
import ParticipantInput
import ParticipantWire

/// How a delivery attempt ended, as the outbox records it.
public enum DeliveryTransition: Sendable, Equatable {
    /// `processingStatus`: a message's `MessageMetadata.MessageProcessingStatus`, as the service said it.
    case sent(id: String, absoluteTime: String, processingStatus: String? = nil)
    case retry(at: Date, error: ErrorBody)
    /// Refused for good. With a block, every waiting event of the connection that the block covers
    /// fails too, with the same error, and new ones are refused for `OutboxLimits.blockDuration`.
    case failed(ErrorBody, block: ConnectionBlock.Scope? = nil)
    case expired(ErrorBody)
}

/// What the sender asks of the outbox: what is due, leases, outcomes, expiry.
extension Outbox {
    /// Whether a queued event of `instance` is past its deadline: what ``expireOverdue(instance:)``
    /// would end. (The index walk covers overdue events only, which their senders end at once.)
    public func hasOverdue(instance: String) async throws -> Bool {
        let now = clock.now().millisecondsSince1970
        return try await database.read { db in
            try Bool.fetchOne(
                db.cachedStatement(sql: """
                    SELECT EXISTS (SELECT 1 FROM event INDEXED BY event_deadline
                                   WHERE state IN (\(EventState.queued.sql), \(EventState.sending.sql)) AND deadline <= ? AND state = \(EventState.queued.sql)
                                     AND instance = ?)
                    """),
                arguments: [now, instance]
            ) ?? false
        }
    }

    /// A connection refused (or a chat closed) until `until`: every submission looks it up.
    static func storeBlock(_ scope: ConnectionBlock.Scope, error: ErrorBody, of connectionHash: String, at now: Int64, until: Int64, in db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO connection_block (connectionHash, scope, errorCode, errorMessage, blockedAt, expiresAt)
            VALUES (?, ?, ?, ?, ?, ?)
            """).execute(arguments: [connectionHash, scope.rawValue, error.code, error.message, now, until])
    }

    /// Whether queued items of `instance` with a priority in `priorities` exist, and whether one
    /// is due now: the earliest next attempt among them, from the due index, a read.
    public func queuedItems(instance: String, priorities: ClosedRange<Int>) async throws -> (any: Bool, due: Bool) {
        let now = clock.now().millisecondsSince1970
        let earliest = try await database.read { db in
            try Int64.fetchOne(
                db.cachedStatement(sql: """
                    SELECT MIN(nextAttemptAt) FROM event INDEXED BY event_due
                    WHERE instance = ? AND state = \(EventState.queued.sql) AND priority BETWEEN ? AND ?
                    """),
                arguments: [instance, Int64(clamping: priorities.lowerBound), Int64(clamping: priorities.upperBound)]
            )
        }
        return (earliest != nil, earliest.map { $0 <= now } ?? false)
    }

    /// When the last request for `instance`'s items with a priority in `priorities` started (its
    /// lease), whatever run made it; `nil`: none is kept. A sender that starts reads it: the
    /// service's bucket may have been spent then. A read of the whole table, once a start.
    public func lastRequestStart(instance: String, priorities: ClosedRange<Int>) async throws -> Date? {
        try await database.read { db in
            try Int64.fetchOne(
                db, sql: "SELECT MAX(leasedAt) FROM event WHERE instance = ? AND priority BETWEEN ? AND ?",
                arguments: [instance, Int64(clamping: priorities.lowerBound), Int64(clamping: priorities.upperBound)]
            ).map { Date(millisecondsSince1970: $0) }
        }
    }

    /// Ends every queued event of `instance` whose deadline has passed as `expired`; returns them.
    public func expireOverdue(instance: String) async throws -> [StoredEvent] {
        let now = clock.now().millisecondsSince1970
        return try await write { db, waitingChange in
            try EventTransition.expireOverdue.apply(
                where: "\(Self.waiting) AND deadline <= :now AND instance = :instance", indexedBy: "event_deadline",
                arguments: ["now": now, "instance": instance], returning: true, in: db, waitingChange: &waitingChange
            ).rows
        }
    }

    /// Leases up to `limit` due events: each becomes `sending` with one more attempt counted.
    ///
    /// Only the oldest waiting event of each connection token is ever leased, so the events of a
    /// connection reach the service in the order they were accepted, while other connections go on.
    /// Among connections, read receipts go first, then delivered receipts, then the rest
    /// (``EventContentType/deliveryPriority``), each oldest first.
    ///
    /// The work does not grow with one connection's backlog:
    /// - when at most `connectionScan(limit)` connections have waiting events, they are found by a
    ///   loose scan of `event_waiting_by_connection` (one index seek per connection), and each one's
    ///   oldest waiting event is leased if due: a chat with 100,000 events behind its oldest one, in
    ///   flight or in backoff, costs as much as a chat with one;
    /// - otherwise the candidates are the connections of the first `leaseWindow(limit)` due events
    ///   in that order, and of each its oldest waiting event, if due. (Looking only for due events
    ///   that are already their connection's oldest would walk past every read receipt queued
    ///   behind its own delivered receipt, a whole backlog of them.) Only when that window is full
    ///   and yields fewer than `limit` is the whole queue searched.
    ///
    /// Only events of `instance` are leased: each instance has its own sender, pacing and outage.
    /// Only items whose priority lies in `priorities` are leased (each of the service's quotas
    /// has its kinds, ``ParticipantWire/ItemKind/priorities``); an item of another quota that is
    /// its connection's oldest holds its connection up all the same. A disconnect is leased only
    /// when no item accepted before it on its chat is held either.
    public func leaseDue(instance: String, limit: Int, priorities: ClosedRange<Int> = Int.min...Int.max) async throws -> [StoredEvent] {
        guard limit > 0 else { return [] }
        let clock = self.clock
        let window = Self.leaseWindow(limit)
        let scan = Self.connectionScan(limit)
        let fair = coalescing.fairShare
        return try await writer.perform(weight: limit) { db in
            // The time the lease runs, not the time it was asked for: it may wait for the
            // writer, and an event whose deadline passed meanwhile is not leased.
            let now = clock.now().millisecondsSince1970
            let leased = try Self.lease(instance: instance, limit: limit, priorities: priorities, now: now, window: window, scan: scan, fair: fair, in: db)
            // The connections just served go behind the others at their priority (fairShare), and
            // the peers just served behind the other peers.
            for event in leased {
                try db.cachedStatement(sql: """
                    INSERT INTO connection_served (instance, connectionHash, servedAt) VALUES (?, ?, ?)
                    ON CONFLICT (instance, connectionHash) DO UPDATE SET servedAt = excluded.servedAt
                    """).execute(arguments: [event.instance, event.connectionHash, now])
            }
            for peer in Set(leased.map(\.peer)) {
                try db.cachedStatement(sql: """
                    INSERT INTO peer_served (instance, peer, servedAt) VALUES (?, ?, ?)
                    ON CONFLICT (instance, peer) DO UPDATE SET servedAt = excluded.servedAt
                    """).execute(arguments: [instance, peer, now])
            }
            return leased
        }
    }

    private static func lease(
        instance: String, limit: Int, priorities: ClosedRange<Int>, now: Int64, window: Int, scan: Int, fair: Bool, in db: Database
    ) throws -> [StoredEvent] {
        let low = Int64(clamping: priorities.lowerBound), high = Int64(clamping: priorities.upperBound)
        // Connections with waiting events in hash order, one index seek each, at most :scan.
        let connections = "WITH RECURSIVE " + Self.distinctValues(
            "candidate", "hash", of: "connectionHash", in: "event_waiting_by_connection", where: "instance = :instance AND \(Self.waiting)", limit: ":scan")
        let waitingConnections = try Int.fetchOne(
            db.cachedStatement(sql: connections + " SELECT COUNT(hash) FROM candidate"),
            arguments: ["scan": scan, "instance": instance]
        ) ?? 0
        var unchanged = 0  // queued to sending: the waiting count stays
        if waitingConnections < scan {
            return try EventTransition.lease.apply(
                where: Self.oldestDue(fair: fair, of: connections),
                arguments: ["now": now, "limit": limit, "scan": scan, "instance": instance, "low": low, "high": high], returning: true, in: db, waitingChange: &unchanged
            ).rows
        }
        // The connections of the first :window due events.
        var leased = try EventTransition.lease.apply(
            where: Self.oldestDue(fair: fair, of: """
                WITH RECURSIVE due AS (
                    SELECT connectionHash FROM event INDEXED BY event_due
                    WHERE instance = :instance AND state = \(EventState.queued.sql) AND priority BETWEEN :low AND :high
                      AND nextAttemptAt <= :now AND deadline > :now
                    ORDER BY priority, nextAttemptAt, seq
                    LIMIT :window),
                \(Self.peersWithQueuedItems),
                peerFirst AS (
                    SELECT (SELECT connectionHash FROM event INDEXED BY event_due_by_peer
                            WHERE instance = :instance AND state = \(EventState.queued.sql) AND peer = peers.peer
                              AND priority BETWEEN :low AND :high AND nextAttemptAt <= :now AND deadline > :now
                            ORDER BY priority, nextAttemptAt LIMIT 1) AS hash
                    FROM peers WHERE peers.peer IS NOT NULL),
                candidate(hash) AS (SELECT connectionHash FROM due UNION SELECT hash FROM peerFirst WHERE hash IS NOT NULL)
                """),
            arguments: ["now": now, "limit": limit, "window": window, "peers": Self.peerScan, "instance": instance, "low": low, "high": high],
            returning: true, in: db, waitingChange: &unchanged
        ).rows
        guard leased.count < limit else { return leased }
        let windowFull = try Int.fetchOne(
            db.cachedStatement(sql: """
                SELECT COUNT(*) FROM (SELECT 1 FROM event INDEXED BY event_due
                                      WHERE instance = ? AND state = \(EventState.queued.sql) AND priority BETWEEN ? AND ?
                                        AND nextAttemptAt <= ? AND deadline > ? LIMIT ?)
                """),
            arguments: [instance, low, high, now, now, window]
        ) == window
        guard windowFull else { return leased }
        leased += try EventTransition.lease.apply(
            where: """
                seq IN (
                    WITH ranked AS (
                        SELECT e.seq, e.peer, e.priority, e.nextAttemptAt,
                               \(Self.turn(fair: fair))
                        FROM event e INDEXED BY event_due
                        WHERE e.instance = :instance AND e.state = \(EventState.queued.sql) AND e.priority BETWEEN :low AND :high
                          AND e.nextAttemptAt <= :now AND e.deadline > :now
                          AND \(Self.nothingHeldBefore("e"))
                          AND NOT EXISTS (
                              SELECT 1 FROM event older INDEXED BY event_waiting_by_connection
                              WHERE older.instance = e.instance AND older.connectionHash = e.connectionHash
                                AND older.\(Self.waiting)
                                AND older.seq < e.seq))
                    \(Self.byTurns))
                """,
            arguments: ["now": now, "limit": limit - leased.count, "instance": instance, "low": low, "high": high], returning: true, in: db, waitingChange: &unchanged
        ).rows
        return leased
    }

    /// Waiting events: the condition of the partial index `event_waiting_by_connection`.
    static let waiting = "state IN (\(EventState.queued.sql), \(EventState.sending.sql))"

    /// Finished events (sent, failed, expired, superseded): the condition of the partial index
    /// `event_finished` (schema v8), word for word. (As a list of the four, SQLite would build a
    /// temporary table for it at every statement that touches a row.)
    static let finished = stateCondition(finishedStates)
    static let finishedStates: [EventState] = [.sent, .failed, .expired, .superseded]

    /// The states an item leaves only by an operator's command or by retention (held, failed,
    /// expired): the condition of the partial index `event_stuck` (schema v14), word for word.
    static let stuck = stateCondition([.held, .failed, .expired])

    /// A partial index's condition on the state, as comparisons joined by OR, in `states`' order.
    private static func stateCondition(_ states: [EventState]) -> String {
        "(" + states.map { "state = \($0.sql)" }.joined(separator: " OR ") + ")"
    }

    /// The instances that have finished events, one look-up in `event_finished` each (a
    /// recursive common table expression named `finished_instance`, column `instance`, with a
    /// last row of NULL), and the finished states (`finished_state`, column `name`): their
    /// queries join them to reach each part of the index, which leads with the instance and
    /// the state.
    static let finishedInstances = distinctValues("finished_instance", "instance", of: "instance", in: "event_finished", where: finished)
        + ",\nfinished_state(name) AS (VALUES \(finishedStates.map { "(\($0.sql))" }.joined(separator: ", ")))"

    /// A recursive `WITH` table `table(column)`: the distinct values of `eventColumn` among the
    /// rows of `index` that `condition` selects, in order, one index seek each (SQLite skips from
    /// one value to the next by itself only with statistics, and the outbox keeps none). Its
    /// last row is NULL when the values run out, before `limit` (an SQL expression) if one is given.
    static func distinctValues(
        _ table: String, _ column: String, of eventColumn: String, in index: String, where condition: String, limit: String? = nil
    ) -> String {
        """
        \(table)(\(column)) AS (
            SELECT (SELECT \(eventColumn) FROM event INDEXED BY \(index)
                    WHERE \(condition) ORDER BY \(eventColumn) LIMIT 1)
            UNION ALL
            SELECT (SELECT \(eventColumn) FROM event INDEXED BY \(index)
                    WHERE \(condition) AND \(eventColumn) > \(table).\(column) ORDER BY \(eventColumn) LIMIT 1)
            FROM \(table) WHERE \(table).\(column) IS NOT NULL\(limit.map { "\n    LIMIT \($0)" } ?? ""))
        """
    }

    /// With fair share, the order's term that puts the connections served least recently first
    /// (never served: first of all); otherwise nothing.
    static func servedOrder(_ fair: Bool, _ table: String) -> String {
        guard fair else { return "" }
        return """
            COALESCE((SELECT s.servedAt FROM connection_served s
                      WHERE s.instance = \(table).instance AND s.connectionHash = \(table).connectionHash), 0),
            """
    }

    /// The lease's selection: of the connections `candidates` names (a `WITH` clause ending in a
    /// table `candidate(hash)`, connections of `:instance`), each one's oldest waiting event, if it
    /// is due, up to `:limit` in priority order (with `fair`, least recently served first among
    /// equals).
    static func oldestDue(fair: Bool, of candidates: String) -> String {
        """
        seq IN (
            \(candidates),
            oldest AS (
                SELECT (SELECT o.seq FROM event o INDEXED BY event_waiting_by_connection
                        WHERE o.instance = :instance AND o.connectionHash = candidate.hash AND o.\(waiting)
                        ORDER BY o.seq LIMIT 1) AS seq
                FROM candidate WHERE candidate.hash IS NOT NULL),
            ranked AS (
                SELECT e.seq, e.peer, e.priority, e.nextAttemptAt, \(turn(fair: fair))
                FROM oldest JOIN event e ON e.seq = oldest.seq
                WHERE e.state = \(EventState.queued.sql) AND e.priority BETWEEN :low AND :high
                  AND e.nextAttemptAt <= :now AND e.deadline > :now
                  AND \(nothingHeldBefore("e")))
            \(byTurns))
        """
    }

    /// Peers take turns: each peer's candidates numbered in the order of one peer alone
    /// (priority, with `fair` the connection served least recently, then the oldest), as the
    /// column `turn` of a candidate `e`.
    static func turn(fair: Bool) -> String {
        "ROW_NUMBER() OVER (PARTITION BY e.peer ORDER BY e.priority, \(servedOrder(fair, "e")) e.nextAttemptAt, e.seq) AS turn"
    }

    /// The lease's order over the `ranked` candidates: every peer's first before any peer's
    /// second, and in each turn the peer served least recently first; up to `:limit`.
    static let byTurns = """
        SELECT seq FROM ranked
        ORDER BY turn, COALESCE((SELECT p.servedAt FROM peer_served p WHERE p.instance = :instance AND p.peer = ranked.peer), 0),
                 priority, nextAttemptAt, seq
        LIMIT :limit
        """

    /// The peers with queued items of `:instance`, one index seek each, at most `:peers`: a
    /// recursive `WITH` table `peers(peer)` (its last row `NULL` when there are fewer).
    static let peersWithQueuedItems = distinctValues(
        "peers", "peer", of: "peer", in: "event_due_by_peer", where: "instance = :instance AND state = \(EventState.queued.sql)", limit: ":peers")

    /// How many peers the lease gives a candidate of their own when many connections wait.
    static let peerScan = 256

    /// A disconnect waits for the items accepted before it on its chat that an operator holds
    /// (held items are not waiting, so the per-connection order alone would let it pass them).
    /// Other items need not wait for held ones. Held items are few: the walk is of them.
    static func nothingHeldBefore(_ table: String) -> String {
        """
        (\(table).priority <> \(ItemContentType.disconnect.deliveryPriority) OR NOT EXISTS (
            SELECT 1 FROM event h INDEXED BY event_stuck
            WHERE h.state = \(EventState.held.sql) AND h.instance = \(table).instance
              AND h.connectionHash = \(table).connectionHash AND h.seq < \(table).seq))
        """
    }

    /// How many due events `leaseDue` looks at when many connections wait. Each one costs the
    /// lease a look-up of its connection's oldest event and its place in the order, whatever the
    /// lease takes: a draining sender leases a few dozen events at a time, and a fixed window of
    /// 256 made each lease cost more than half as much again (BENCHMARKS.md, "Instructions").
    /// Four times the limit leaves room for events queued behind their
    /// connection's older one; fewer than `limit` found in a full window falls back to searching
    /// the whole queue.
    public static func leaseWindow(_ limit: Int) -> Int {
        min(max(limit * 4, 64), 4_096)
    }

    /// Up to how many waiting connections `leaseDue` finds one by one (fewer than this: all of them).
    public static func connectionScan(_ limit: Int) -> Int {
        min(max(limit * 2, 64), 1_024)
    }

    /// Records how the attempt on a leased event ended. Every end erases the connection token;
    /// `sent` erases the content too (its digest stays for deduplication), while a failed or
    /// expired event keeps it until retention deletes the row, so that an operator can send it
    /// again with a current token (`participantctl retry --connection-token`).
    /// - Returns: how many other waiting events failed with it (a `failed` with a block).
    @discardableResult
    public func record(_ transition: DeliveryTransition, for event: StoredEvent) async throws -> Int {
        let now = clock.now().millisecondsSince1970
        let step: EventTransition
        var arguments: StatementArguments = ["seq": event.seq, "now": now]
        switch transition {
        case .sent(let id, let absoluteTime, let processingStatus):
            step = .send
            // DisconnectParticipant answers with neither.
            arguments += ["id": id.isEmpty ? nil : id, "absoluteTime": absoluteTime.isEmpty ? nil : absoluteTime, "processingStatus": processingStatus]
        case .retry(let at, let error):
            step = .retryLater
            arguments += ["at": at.millisecondsSince1970, "code": error.code, "message": error.message]
        case .failed(let error, _):
            step = .fail
            arguments += ["code": error.code, "message": error.message]
        case .expired(let error):
            step = .expireAttempt
            arguments += ["code": error.code, "message": error.message]
        }
        let finalArguments = arguments
        let block: ConnectionBlock? = if case .failed(let error, let scope?) = transition {
            ConnectionBlock(scope: scope, error: error, blockedAt: Date(millisecondsSince1970: now))
        } else {
            nil
        }
        let blockUntil = now + Int64(limits.blockDuration.timeInterval * 1000)
        let othersFailed = try await write { db, waitingChange -> Int in
            // Nothing changes when the event is no longer `sending` (an outcome recorded twice).
            try step.apply(where: "seq = :seq", arguments: finalArguments, in: db, waitingChange: &waitingChange)
            guard let block else { return 0 }
            try Self.storeBlock(block.scope, error: block.error, of: event.connectionHash, at: now, until: blockUntil, in: db)
            // Events in flight get their own answer; the queued ones need no request to fail.
            return try EventTransition.failWithConnection.apply(
                where: "instance = :instance AND connectionHash = :hash AND \(Self.waiting) AND \(block.contentTypeCondition)",
                indexedBy: "event_waiting_by_connection",
                arguments: ["code": block.error.code, "message": block.error.message, "now": now, "instance": event.instance, "hash": event.connectionHash],
                in: db, waitingChange: &waitingChange
            ).changed
        }
        outcomes.notify(event.clientToken)
        return othersFailed
    }
}
