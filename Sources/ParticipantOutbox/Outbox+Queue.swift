import Foundation
import GRDB
import ParticipantWire

/// Why a queue command cannot change an event.
public enum QueueCommandError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(clientToken: String)
    /// The event is in a state the command does not apply to; `rule` says which states it does.
    case wrongState(clientToken: String, state: EventState, rule: String)
    /// A failed or expired item's connection token is erased when it ends: it is sent again only
    /// with a new one (or, for a chat named by a participant token, while the daemon keeps its connection).
    case tokenErased(clientToken: String)
    /// In everyone's items, several peers' items have this ClientToken (each peer's tokens are its
    /// own): the command must name the peer.
    case ambiguous(clientToken: String, peers: [Int64])

    public var description: String {
        switch self {
        case .notFound(let token): "no event with clientToken \(token)"
        case .wrongState(let token, let state, let rule): "event \(token) is \(state.rawValue): \(rule)"
        case .tokenErased(let token):
            "event \(token) cannot be sent again without a connection token: its own was erased when it ended; give a current one (participantctl retry --connection-token)"
        case .ambiguous(let token, let peers):
            "clientToken \(token) names items of \(peers.count) users (\(peers.map(PeerName.described).joined(separator: ", "))): name one with owner=UID (participantctl --owner USER)"
        }
    }
}

/// The items a queue command sees: one peer's (its ClientTokens are its own namespace), or
/// everyone's (root, the daemon's user, `access.adminGroups`).
public enum ItemScope: Sendable, Equatable {
    case peer(Int64)
    case everyone

    /// The peer whose items these are; `nil`: everyone's.
    public var peer: Int64? {
        if case .peer(let peer) = self { peer } else { nil }
    }
}

/// The queue commands (`participantctl list/show/retry/hold/release/delete/flush/stats`): an
/// operator's view of the outbox and the changes they may make, each one transaction, each on
/// the items of a scope: another peer's item is not found.
extension Outbox {
    /// Waiting states are listed oldest first (what is stuck comes first); other listings newest
    /// first. A page of `limit`; `after` (a seq, the last of the page before) starts after it.
    public func list(
        state: EventState?, connectionHashPrefix: String?, instance: String? = nil, in scope: ItemScope = .everyone,
        after cursor: Int64? = nil, limit: Int
    ) async throws -> [StoredEvent] {
        let ascending = state.map { !$0.isFinal } ?? false
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let cursor {
            conditions.append(ascending ? "seq > ?" : "seq < ?")
            arguments += [cursor]
        }
        if let peer = scope.peer {
            conditions.append("peer = ?")
            arguments += [peer]
        }
        // The index that holds the state's items, named: no index holds every row's state.
        var index: String?
        if let state {
            switch state {
            case .queued, .sending:
                index = "event_waiting_by_connection"
                conditions.append("\(Self.waiting) AND state = \(state.sql)")
            case .held, .failed, .expired:
                index = "event_stuck"
                conditions.append("\(Self.stuck) AND state = \(state.sql)")
            case .sent, .superseded:
                // Most rows, listed newest first: a walk back from the table's end meets them at once.
                conditions.append("state = \(state.sql)")
            }
        }
        if let prefix = connectionHashPrefix {
            conditions.append("substr(connectionHash, 1, ?) = ?")
            arguments += [prefix.count, prefix.lowercased()]
        }
        if let instance {
            conditions.append("instance = ?")
            arguments += [instance]
        }
        let order = ascending ? "ASC" : "DESC"
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT * FROM event\(index.map { " INDEXED BY \($0)" } ?? "") \(whereClause) ORDER BY seq \(order) LIMIT ?"
        arguments += [limit]
        let finalArguments = arguments
        return try await database.read { db in
            try StoredEvent.fetchAll(db, sql: sql, arguments: finalArguments)
        }
    }

    /// A failed or expired event goes back to `queued`, due now, with a new deadline (its content
    /// type's, from now). Its ClientToken is unchanged, so the service still deduplicates it.
    ///
    /// Its connection token was erased when it ended: `connectionToken` is the one to send it
    /// with, and the item then belongs to that connection (its order, its hash). Without one,
    /// only an item of a chat named by a participant token can be sent again, while the daemon
    /// still keeps that chat's connection.
    public func retry(clientToken: String, connectionToken: String? = nil, in scope: ItemScope = .everyone) async throws -> StoredEvent {
        let now = clock.now()
        let deadlines = deadlines
        let limits = limits
        let waiting = waiting
        return try await write { db, waitingChange -> StoredEvent in
            let event = try Self.existing(clientToken, in: scope, db)
            guard event.state == .failed || event.state == .expired else {
                throw QueueCommandError.wrongState(clientToken: clientToken, state: event.state, rule: "only a failed or expired event can be retried")
            }
            guard try connectionToken != nil || event.connectionToken != nil || (event.viaParticipant && Self.keepsConnection(of: event, db)) else {
                throw QueueCommandError.tokenErased(clientToken: clientToken)
            }
            try waiting.ensureRoom(capacity: limits.capacity)
            return try Self.requeue(event, connectionToken: connectionToken, now: now, deadlines: deadlines, in: db, waitingChange: &waitingChange)
        }
    }

    /// Every failed event that can be sent again without a new token (an item of a chat named by
    /// a participant token whose connection the daemon keeps) goes back to `queued` (as
    /// ``retry(clientToken:connectionToken:in:)``), up to the outbox's capacity. Returns how many.
    public func retryAllFailed(in scope: ItemScope = .everyone) async throws -> Int {
        let now = clock.now()
        let deadlines = deadlines
        let room = max(0, limits.capacity - waiting.value)
        return try await write { db, waitingChange -> Int in
            let failed = try StoredEvent.fetchAll(
                db, sql: """
                    SELECT * FROM event e INDEXED BY event_stuck WHERE \(Self.stuck) AND state = \(EventState.failed.sql) AND (? IS NULL OR peer = ?)
                      AND (connectionToken IS NOT NULL OR (viaParticipant AND EXISTS (
                          SELECT 1 FROM participant_connection pc WHERE pc.instance = e.instance AND pc.connectionHash = e.connectionHash)))
                    ORDER BY seq LIMIT ?
                    """,
                arguments: [scope.peer, scope.peer, room]
            )
            for event in failed {
                _ = try Self.requeue(event, connectionToken: nil, now: now, deadlines: deadlines, in: db, waitingChange: &waitingChange)
            }
            return failed.count
        }
    }

    /// Whether the daemon still keeps the participant connection of `event`'s chat (it forgets
    /// one idle for `outbox.connectionIdle` with nothing waiting).
    private static func keepsConnection(of event: StoredEvent, _ db: Database) throws -> Bool {
        try Bool.fetchOne(
            db, sql: "SELECT 1 FROM participant_connection WHERE instance = ? AND connectionHash = ?",
            arguments: [event.instance, event.connectionHash]
        ) ?? false
    }

    /// A queued event is put aside: not sent, not expired, not holding up its connection.
    public func hold(clientToken: String, in scope: ItemScope = .everyone) async throws -> StoredEvent {
        let now = clock.now().millisecondsSince1970
        return try await write { db, waitingChange -> StoredEvent in
            let event = try Self.existing(clientToken, in: scope, db)
            guard event.state == .queued else {
                let rule = event.state == .sending
                    ? "a request for it is in flight; hold it after the answer, if it is queued again"
                    : "only a queued event can be held"
                throw QueueCommandError.wrongState(clientToken: clientToken, state: event.state, rule: rule)
            }
            return try Self.change(event, .hold, ["now": now], in: db, waitingChange: &waitingChange)
        }
    }

    /// A held event is queued again, due now; if its deadline passed while held it ends `expired`
    /// at the sender's next round instead.
    public func release(clientToken: String, in scope: ItemScope = .everyone) async throws -> StoredEvent {
        let now = clock.now().millisecondsSince1970
        let limits = limits
        let waiting = waiting
        return try await write { db, waitingChange -> StoredEvent in
            let event = try Self.existing(clientToken, in: scope, db)
            guard event.state == .held else {
                throw QueueCommandError.wrongState(clientToken: clientToken, state: event.state, rule: "only a held event can be released")
            }
            try waiting.ensureRoom(capacity: limits.capacity)
            return try Self.change(event, .release, ["now": now], in: db, waitingChange: &waitingChange)
        }
    }

    /// Deletes an event that is not in flight. Its ClientToken is forgotten: a later submission
    /// with it is a new event.
    public func delete(clientToken: String, in scope: ItemScope = .everyone) async throws -> StoredEvent {
        let event = try await write { db, waitingChange -> StoredEvent in
            let event = try Self.existing(clientToken, in: scope, db)
            guard event.state != .sending else {
                throw QueueCommandError.wrongState(clientToken: clientToken, state: event.state, rule: "a request for it is in flight; delete it after the answer")
            }
            try db.execute(sql: "DELETE FROM event WHERE seq = ?", arguments: [event.seq])
            if event.state == .queued { waitingChange -= db.changesCount }
            if event.contentType == .disconnect {
                // The chat opens again.
                try db.execute(sql: "DELETE FROM connection_block WHERE connectionHash = ? AND scope = ? AND errorMessage = ?",
                               arguments: [event.connectionHash, ConnectionBlock.Scope.disconnected.rawValue, event.clientToken])
            }
            return event
        }
        outcomes.notify(clientToken)
        return event
    }

    /// Every queued event of the scope waiting for a later retry becomes due now. Returns how many.
    public func flush(in scope: ItemScope = .everyone) async throws -> Int {
        let now = clock.now().millisecondsSince1970
        return try await writer.perform { db in
            try db.execute(
                sql: """
                    UPDATE event INDEXED BY event_due SET nextAttemptAt = ?
                    WHERE state = \(EventState.queued.sql) AND priority >= 0 AND nextAttemptAt > ? AND (? IS NULL OR peer = ?)
                    """,
                arguments: [now, now, scope.peer, scope.peer]
            )
            return db.changesCount
        }
    }

    /// Events that ended `sent` in the last `window`; of one instance, or all; of the scope's items.
    public func sentCount(within window: Duration, instance: String? = nil, in scope: ItemScope = .everyone) async throws -> Int {
        let since = clock.now().millisecondsSince1970 - Int64(window.timeInterval * 1000)
        return try await database.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    WITH RECURSIVE \(Self.finishedInstances)
                    SELECT COUNT(*) FROM finished_instance i JOIN event e INDEXED BY event_finished ON e.instance = i.instance
                    WHERE \(Self.finished) AND e.updatedAt >= ? AND e.state = \(EventState.sent.sql)
                      AND (? IS NULL OR i.instance = ?) AND (? IS NULL OR e.peer = ?)
                    """,
                arguments: [since, instance, instance, scope.peer, scope.peer]
            ) ?? 0
        }
    }

    /// Each peer's waiting (queued or sending) items, and its items sent within `window` (`nil`:
    /// not counted, 0), for the peers that have either. Walks the waiting items, and with a
    /// window the recently finished ones.
    public func peerCounts(sentWithin window: Duration?) async throws -> [Int64: (waiting: Int, sent: Int)] {
        let since = window.map { clock.now().millisecondsSince1970 - Int64($0.timeInterval * 1000) }
        return try await database.read { db in
            var counts: [Int64: (waiting: Int, sent: Int)] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT peer, COUNT(*) AS n FROM event INDEXED BY event_waiting_by_connection
                WHERE \(Self.waiting) GROUP BY peer
                """) {
                counts[row["peer"], default: (0, 0)].waiting = row["n"]
            }
            guard let since else { return counts }
            for row in try Row.fetchAll(db, sql: """
                WITH RECURSIVE \(Self.finishedInstances)
                SELECT e.peer, COUNT(*) AS n FROM finished_instance i JOIN event e INDEXED BY event_finished ON e.instance = i.instance
                WHERE \(Self.finished) AND e.updatedAt >= ? AND e.state = \(EventState.sent.sql) GROUP BY e.peer
                """, arguments: [since]) {
                counts[row["peer"], default: (0, 0)].sent = row["n"]
            }
            return counts
        }
    }

    private static func existing(_ clientToken: String, in scope: ItemScope, _ db: Database) throws -> StoredEvent {
        guard let event = try item(clientToken, in: scope, db) else {
            throw QueueCommandError.notFound(clientToken: clientToken)
        }
        return event
    }

    private static func requeue(
        _ event: StoredEvent, connectionToken: String?, now: Date, deadlines: EventDeadlines, in db: Database, waitingChange: inout Int
    ) throws -> StoredEvent {
        let deadline = now.addingTimeInterval(deadlines.deadline(for: event.contentType).timeInterval)
        let token = connectionToken ?? event.connectionToken
        return try change(
            event, .retryByOperator,
            ["now": now.millisecondsSince1970, "deadline": deadline.millisecondsSince1970, "token": token,
             "hash": connectionToken.map { ConnectionHash.of($0, instance: event.instance) }],
            in: db, waitingChange: &waitingChange
        )
    }

    /// Applies `transition` to `event` (by its key), in the caller's write; the event as it is now.
    private static func change(
        _ event: StoredEvent, _ transition: EventTransition, _ arguments: StatementArguments, in db: Database, waitingChange: inout Int
    ) throws -> StoredEvent {
        var arguments = arguments
        arguments += ["seq": event.seq]
        guard let changed = try transition.apply(
            where: "seq = :seq", arguments: arguments, returning: true, in: db, waitingChange: &waitingChange
        ).rows.first else {
            throw QueueCommandError.notFound(clientToken: event.clientToken)
        }
        return changed
    }
}
