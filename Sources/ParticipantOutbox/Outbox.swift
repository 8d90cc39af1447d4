import ParticipantInput
import Foundation
import GRDB
import Logging
import ParticipantWire
import Synchronization

/// What became of a submission.
public enum SubmitOutcome: Sendable, Equatable {
    /// A new event, now stored.
    case created(StoredEvent)
    /// The same ClientToken with the same parameters was already stored: nothing new was stored.
    case duplicate(StoredEvent)
    /// The same ClientToken is stored with other parameters: refused.
    case mismatch(StoredEvent)
    /// The service refused this connection for good a short while ago: not stored.
    case blocked(ConnectionBlock)
    /// The chat's participant was disconnected (this disconnect, stored earlier): it takes
    /// nothing more for `OutboxLimits.blockDuration` after the disconnect. Not stored.
    case chatDisconnected(StoredEvent)
}

/// The outbox's bounds.
public struct OutboxLimits: Sendable, Equatable {
    /// Waiting events (queued or sending) at most; beyond, submissions are refused, nothing dropped.
    public var capacity = 100_000
    /// How long finished events (sent, failed, expired, superseded) are kept, and with them the
    /// ClientTokens that deduplicate resubmissions.
    public var retention: Duration = .seconds(86_400)
    /// How long a connection the service refused for good stays refused.
    public var blockDuration: Duration = .seconds(86_400)
    /// How long a participant token (and the connection made from it) stays on disk after its
    /// chat's last submission, once nothing of the chat waits.
    public var connectionIdle: Duration = .seconds(600)
    /// The database file's size at most, in MiB (0: as large as the disk allows). Beyond it,
    /// writes fail as on a full disk: submissions get 507 `StorageFull` (from 90% of it on, the
    /// rest being room for the sender), nothing is lost.
    public var maxDatabaseMegabytes = 1_024
    /// The part of `capacity` one peer's waiting items may take (`access.peerMaxWaitingShare`):
    /// beyond it that peer's submissions are refused while others still get in.
    public var peerShare = 0.5
    /// How long `PRAGMA quick_check` may take at open (`outbox.startupCheckSeconds`); beyond, the
    /// check is interrupted and the outbox opens unchecked, with a warning. Zero: no check.
    public var startupCheck: Duration = .seconds(30)
    /// How long an item may stay held (`participantctl hold`, `outbox.holdMaxSeconds`) before it
    /// ends `expired` and its connection token is erased: a held credential is not kept forever.
    public var holdMax: Duration = .seconds(86_400)

    public init() {}

    /// Waiting items one peer may have at most.
    public var peerCapacity: Int { max(1, Int((Double(capacity) * peerShare).rounded(.down))) }
}

/// The durable queue of events: one SQLite database in WAL mode with `synchronous=FULL`.
///
/// Every write goes through the ``OutboxWriter`` (group commit); reads use the pool's readers and
/// never wait for a write. All SQL of the daemon lives in this type.
///
/// Queries on the queue name their index (`INDEXED BY`): without statistics SQLite's planner
/// picks by its own guesses (until schema v14 it preferred an index of every row's state, which
/// visited every queued row), so a lease, expiry check or wake-up could cost time in proportion
/// to the backlog. Named, each is a look-up in a partial index, and a plan that cannot use it
/// fails at once instead of slowing down. No index holds every row's state: each state is found
/// by the partial index whose condition names it (`event_due`, `event_waiting_by_connection`,
/// `event_stuck`, `event_finished`).
public struct Outbox: Sendable {
    /// The writer: a `Service` the daemon runs before every service that writes.
    public let writer: OutboxWriter
    /// A `DatabasePool` on the outbox's file in the daemon; a `DatabaseQueue` in memory in tests.
    let database: any DatabaseWriter
    let deadlines: EventDeadlines
    /// Limits and coalescing rules; retention and coalescing may change at run time (SIGHUP).
    let rules: Rules
    public var limits: OutboxLimits { rules.state.withLock { $0.limits } }
    public var coalescing: CoalescingRules { rules.state.withLock { $0.coalescing } }

    final class Rules: Sendable {
        let state: Mutex<(limits: OutboxLimits, coalescing: CoalescingRules)>
        init(limits: OutboxLimits, coalescing: CoalescingRules) { state = Mutex((limits, coalescing)) }
    }

    /// Settings a reload may change: how long finished events are kept, and coalescing.
    public func update(retention: Duration, coalescing: CoalescingRules) {
        rules.state.withLock { rules in
            rules.limits.retention = retention
            rules.coalescing = coalescing
        }
    }
    /// Queued plus sending events, kept in step by every transition so that the capacity check
    /// costs no query.
    let waiting: WaitingCount
    let clock: WallClock
    /// The file's lock; `nil` in memory.
    let lock: DatabaseLock?
    /// Wakes requests waiting for an attempt's outcome (`POST /participant/event`).
    package let outcomes = OutcomeSignals()
    /// Whether new events can be stored now (health).
    let storage: StorageState
    /// When a submission looks the database's size up.
    let sizeWatch = SizeWatch()
    /// Counts superseded events; `nil`: not counted.
    let metrics: OutboxMetrics?
    /// Requests saved by each coalescing rule since the outbox opened (`stats`).
    public let savedRequests = SavedRequests()

    // MARK: Submitting

    /// The peer of an item whose submitter is not known (stored before schema v11, or an
    /// anonymous client off loopback).
    public static let unknownPeer: Int64 = -1

    /// Stores `event` unless its ClientToken is already stored; returns once the outcome is on disk.
    ///
    /// A missing ClientToken is generated here (UUID v4), once; the generated token is part of
    /// the returned record and is sent on every attempt.
    ///
    /// - Throws: ``OutboxError/full`` when `limits.capacity` items are waiting (a resubmission of a
    ///   stored ClientToken is still answered).
    public func submit(_ event: ValidatedEvent) async throws -> SubmitOutcome {
        try await submit([ValidatedItem.event(event)])[0].get()
    }

    /// Stores `message` as ``submit(_:)-(ValidatedEvent)`` stores an event: the same ClientToken
    /// namespace (a token stored for an event is a mismatch for a message), the same order per
    /// chat. A message is never coalesced, and goes before events when the quota binds.
    public func submit(_ message: ValidatedMessage) async throws -> SubmitOutcome {
        try await submit([ValidatedItem.message(message)])[0].get()
    }

    public func submit(_ events: [ValidatedEvent]) async throws -> [Result<SubmitOutcome, OutboxError>] {
        try await submit(events.map(ValidatedItem.event))
    }

    /// Stores several items in one transaction (one group commit), each as ``submit(_:)`` would:
    /// one result per item, in order. An item the outbox has no room for (``OutboxError/full``,
    /// ``OutboxError/storageFull`` from `outbox.maxDatabaseMegabytes`) fails alone; an error of the
    /// database itself fails them all (the method throws, nothing is stored).
    ///
    /// - Parameter peer: the uid of the user whose program submitted them (``unknownPeer``: not
    ///   known); when the quota binds, peers take turns.
    public func submit(_ items: [ValidatedItem], peer: Int64 = Outbox.unknownPeer) async throws -> [Result<SubmitOutcome, OutboxError>] {
        try await withCheckedThrowingContinuation { continuation in
            submit(items, peer: peer) { continuation.resume(with: $0) }
        }
    }

    /// ``submit(_:peer:)-(_,_)`` for a caller that is not a task (the socket API's hot routes, on
    /// their event loop): `completion` gets the results once the transaction has committed, on
    /// the writer's thread (or at once on the caller's when the outbox takes no more writes). It
    /// must not block: the writer's next commit waits for it.
    public func submit(
        _ items: [ValidatedItem], peer: Int64 = Outbox.unknownPeer,
        completion: @escaping @Sendable (Result<[Result<SubmitOutcome, OutboxError>], any Error>) -> Void
    ) {
        let submissions = items.map { item in
            // The hashes here, on the caller's thread: the writer's one thread is what bounds the
            // rate under load (BENCHMARKS.md, "Issue 31, third round").
            (item: item, clientToken: item.clientToken ?? UUID().uuidString.lowercased(),
             connectionHash: ConnectionHash.of(item.credential, instance: item.instance), deadlineAfter: deadlines.deadline(for: item.contentType),
             digest: ContentDigest.of(item.content))
        }
        let clock = clock
        let coalescing = coalescing
        let limits = limits
        let waiting = waiting
        let sizeWatch = sizeWatch
        let storage = storage
        let savedRequests = savedRequests
        let metrics = metrics
        write(weight: submissions.count, direct: { statements, waitingChange -> [(Result<SubmitOutcome, OutboxError>, saved: [CoalescingRule: Int])] in
            var peerRoom = PeerRoom(peer: peer)
            // The database's size, looked up at most once a transaction (at its first new item),
            // and only when `sizeWatch` says the room left may have run short.
            var storageRoom: Result<Void, any Error>?
            return try submissions.map { submission in
                do {
                    return try Self.store(
                        submission.item, peer: &peerRoom, storageRoom: &storageRoom, sizeWatch: sizeWatch, clientToken: submission.clientToken, connectionHash: submission.connectionHash,
                        digest: submission.digest, deadlineAfter: submission.deadlineAfter, now: clock.now(), coalescing: coalescing,
                        limits: limits, waiting: waiting, in: statements, waitingChange: &waitingChange
                    )
                } catch let error as OutboxError {
                    switch error {
                    case .full, .peerFull, .storageFull: return (.failure(error), [:])
                    default: throw error
                    }
                }
            }
        }) { outcome in
            let results: [(Result<SubmitOutcome, OutboxError>, saved: [CoalescingRule: Int])]
            switch outcome {
            case .success(let committed):
                results = committed
            case .failure(let error):
                if case OutboxError.storageFull(let reason) = error { storage.submissionRefused(reason) }
                completion(.failure(error))
                return
            }
            for (result, saved) in results {
                switch result {
                case .success(.created):
                    storage.eventStored()
                    // Superseded: the new event itself (redundant on arrival), or the waiting ones it replaced.
                    savedRequests.add(saved)
                    metrics?.superseded(saved)
                case .failure(.storageFull(let reason)):
                    storage.submissionRefused(reason)
                default:
                    break
                }
            }
            completion(.success(results.map(\.0)))
        }
    }

    /// One item of a submission, inside its transaction: the same ClientToken again, a blocked
    /// connection, no room, or the item stored (an event coalesced with the waiting ones).
    private static func store(
        _ item: ValidatedItem, peer room: inout PeerRoom, storageRoom: inout Result<Void, any Error>?, sizeWatch: SizeWatch, clientToken: String, connectionHash: String,
        digest: Data, deadlineAfter: Duration, now: Date,
        coalescing: CoalescingRules, limits: OutboxLimits, waiting: WaitingCount, in statements: DirectStatements, waitingChange: inout Int
    ) throws -> (Result<SubmitOutcome, OutboxError>, saved: [CoalescingRule: Int]) {
        let db = statements.db
        // The same ClientToken again: the stored item, the same (a duplicate) or not (a mismatch).
        // One namespace per peer for every kind: a token stored for an event and sent again for
        // a message is a mismatch; the same token from another peer is another item. Almost
        // every submission is new, so the insert below finds a stored token (its key conflicts);
        // this look-up runs only then, and before every refusal, so that a resubmission is still
        // answered when the chat is closed or the outbox has no room.
        func resubmission() throws -> (Result<SubmitOutcome, OutboxError>, saved: [CoalescingRule: Int])? {
            guard let existing = try StoredEvent.fetchOne(db.cachedStatement(sql: "SELECT * FROM event WHERE clientToken = ? AND peer = ?"), arguments: [clientToken, room.peer]) else { return nil }
            let same = existing.contentType == item.contentType
                && existing.hasContent(item.content)
                && existing.connectionHash == connectionHash
                && existing.instance == item.instance
            return (.success(same ? .duplicate(existing) : .mismatch(existing)), [:])
        }
        if let block = try Self.block(of: connectionHash, covering: item.contentType, at: now, in: statements) {
            if let resubmitted = try resubmission() { return resubmitted }
            if block.scope == .disconnected,
               let disconnect = try StoredEvent.fetchOne(
                   db.cachedStatement(sql: "SELECT * FROM event WHERE clientToken = ? AND peer = ? AND connectionHash = ?"),
                   arguments: [block.error.message, room.peer, connectionHash]) {
                // The peer's own disconnect; another's is not shown (a block says when, not which).
                return (.success(.chatDisconnected(disconnect)), [:])
            }
            return (.success(.blocked(block)), [:])
        }
        // The count moves when the transaction commits: this transaction's own new items count
        // too. Concurrent submissions may overshoot by one batch.
        do {
            try waiting.ensureRoom(capacity: limits.capacity, pending: waitingChange)
            try room.ensureRoom(limits, waitingNow: waiting.value + waitingChange, in: db)
            if storageRoom == nil {
                storageRoom = Result { try Self.checkRoomForNewEvents(limits, watch: sizeWatch, in: db) }
            }
            try storageRoom?.get()
        } catch {
            if let resubmitted = try resubmission() { return resubmitted }
            throw error
        }
        let peer = room.peer
        let deadline = now.addingTimeInterval(deadlineAfter.timeInterval)
        // Messages are never coalesced: each one is sent, in its place.
        let decision = switch item {
        case .event(let event): try Self.coalesce(event, connectionHash: connectionHash, now: now, rules: coalescing, in: statements)
        case .message: CoalescingDecision()
        // The chat's typing and receipts still queued say nothing once the participant has left.
        case .disconnect: try Self.eventsEndedByDisconnect(connectionHash: connectionHash, instance: item.instance, in: db)
        }
        // Redundant on arrival: stored as superseded (so its client can learn why), never sent.
        let redundant = decision.supersededBy != nil
        let credential = item.credential
        let viaParticipant = if case .participant = credential { true } else { false }
        let ms = now.millisecondsSince1970
        // A delivered receipt waits a moment for the read receipt that may replace it.
        let hold = item.contentType == .event(.messageDelivered) ? Int64(coalescing.deliveredHold.timeInterval * 1000) : 0
        try DirectStatement.execute(Self.insertSQL, [
            clientToken, item.contentType.rawValue, redundant ? nil : item.content, redundant || viaParticipant ? nil : item.connectionToken,
            connectionHash, redundant ? EventState.superseded.rawValue : EventState.queued.rawValue,
            ms, ms, redundant ? nil : ms + hold, deadline.millisecondsSince1970, item.contentType.deliveryPriority,
            item.messageId, decision.supersededBy, item.instance, viaParticipant, peer, digest,
        ], in: statements)
        if db.changesCount == 0 {
            // The key is taken: a resubmission, answered with the item stored.
            guard let resubmitted = try resubmission() else { throw OutboxError.storage("the insert of \(clientToken) changed nothing, yet no item holds its key") }
            return resubmitted
        }
        if case .participant(let participantToken, let connectParticipant) = credential, !redundant {
            // A connection.acknowledged event asks for ConnectParticipant (the event is deprecated).
            let connect = item.contentType == .event(.connectionAcknowledged) ? true : connectParticipant
            try Self.noteParticipant(participantToken, connectParticipant: connect, connectionHash: connectionHash, instance: item.instance, now: ms, in: db)
        }
        let seq = db.lastInsertedRowID
        sizeWatch.stored()
        if !redundant {
            waitingChange += 1
            room.added += 1
        }
        if item.kind == .disconnect {
            // The chat takes nothing more: the block every submission looks up says so.
            try Self.storeBlock(.disconnected, error: ErrorBody(code: APIErrorCode.chatDisconnected, message: clientToken),
                                of: connectionHash, at: ms, until: ms + Int64(limits.blockDuration.timeInterval * 1000), in: db)
        }
        var saved = try Self.supersede(decision.replaced, by: clientToken, now: ms, in: db, waitingChange: &waitingChange)
        if let rule = decision.rule, redundant { saved[rule, default: 0] += 1 }
        var stored = StoredEvent(
            accepted: item, seq: seq, clientToken: clientToken, connectionHash: connectionHash,
            at: now, deadline: deadline, supersededBy: decision.supersededBy, due: Date(millisecondsSince1970: ms + hold), digest: digest
        )
        stored.peer = peer
        return (.success(.created(stored)), saved)
    }

    private static let insertSQL = DirectSQL("""
        INSERT INTO event (clientToken, contentType, content, connectionToken, connectionHash,
                           state, attempts, acceptedAt, updatedAt, nextAttemptAt, deadline, priority,
                           messageId, supersededBy, instance, viaParticipant, peer, digest)
        VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (clientToken, peer) DO NOTHING
        """)

    /// One peer's share of the outbox during one submission's transaction: its waiting items are
    /// counted only when the outbox holds as many in all as the share allows one peer (below
    /// that, no peer can be over it), once a transaction, with this transaction's own added.
    struct PeerRoom {
        let peer: Int64
        /// The peer's waiting items when the transaction counted them; `nil`: not counted.
        var counted: Int?
        /// Items of this transaction stored for it since.
        var added = 0

        init(peer: Int64) {
            self.peer = peer
        }

        mutating func ensureRoom(_ limits: OutboxLimits, waitingNow: Int, in db: Database) throws {
            let capacity = limits.peerCapacity
            guard waitingNow >= capacity else { return }
            if counted == nil {
                // Queued items by the per-peer due index, instance by instance (few, found by
                // skipping from one to the next in `event_due`); those in flight (at most
                // sender.maxInFlight an instance) are left out.
                counted = try Int.fetchOne(db.cachedStatement(sql: """
                    WITH RECURSIVE \(Outbox.distinctValues("i", "instance", of: "instance", in: "event_due", where: "state = \(EventState.queued.sql)"))
                    SELECT COALESCE(SUM((SELECT COUNT(*) FROM event e INDEXED BY event_due_by_peer
                                         WHERE e.instance = i.instance AND e.peer = ? AND e.state = \(EventState.queued.sql))), 0)
                    FROM i WHERE i.instance IS NOT NULL
                    """), arguments: [peer]) ?? 0
                added = 0
            }
            guard (counted ?? 0) + added < capacity else { throw OutboxError.peerFull(share: limits.peerShare, capacity: capacity) }
        }
    }

    /// A write that changes how many events wait: `work` adds to its second argument the waiting
    /// events its statements added (rows inserted or made queued) and takes away those they ended,
    /// counted from the rows each statement changed (`db.changesCount`), inside the transaction.
    /// The count moves once the transaction committed, and not at all if it failed, so it stays
    /// equal to the rows that wait.
    func write<T: Sendable>(weight: Int = 1, _ work: @escaping @Sendable (Database, inout Int) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            write(weight: weight, work) { continuation.resume(with: $0) }
        }
    }

    /// ``write(weight:_:)`` for a caller that is not a task: `completion` runs on the writer's
    /// thread once the transaction has committed (see ``OutboxWriter/perform(weight:_:completion:)``).
    func write<T: Sendable>(
        weight: Int = 1, _ work: @escaping @Sendable (Database, inout Int) throws -> T, completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        write(weight: weight, direct: { statements, change in try work(statements.db, &change) }, completion: completion)
    }

    /// ``write(weight:_:completion:)`` for a write that runs ``DirectStatement``s on the writer
    /// connection's statements.
    func write<T: Sendable>(
        weight: Int = 1, direct work: @escaping @Sendable (DirectStatements, inout Int) throws -> T, completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        let waiting = waiting
        writer.perform(weight: weight, direct: { statements -> (T, Int) in
            var change = 0
            let value = try work(statements, &change)
            return (value, change)
        }) { result in
            completion(result.map { value, change in
                waiting.add(change)
                return value
            })
        }
    }

    private static let blockedSQL = DirectSQL("SELECT EXISTS (SELECT 1 FROM connection_block WHERE connectionHash = ? AND expiresAt > ?)")

    private static func block(of connectionHash: String, covering contentType: ItemContentType, at now: Date, in statements: DirectStatements) throws -> ConnectionBlock? {
        let db = statements.db
        // Almost no connection is blocked: a look-up of the key first, the rows only when found.
        let blocked = try DirectStatement.fetchOne(
            Bool.self, blockedSQL, [connectionHash, now.millisecondsSince1970], in: statements
        ) ?? false
        guard blocked else { return nil }
        let rows = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM connection_block WHERE connectionHash = ? AND expiresAt > ?"),
            arguments: [connectionHash, now.millisecondsSince1970]
        )
        return rows.compactMap { row -> ConnectionBlock? in
            guard let scope = ConnectionBlock.Scope(rawValue: row["scope"]) else { return nil }
            return ConnectionBlock(
                scope: scope, error: ErrorBody(code: row["errorCode"], message: row["errorMessage"]),
                blockedAt: Date(millisecondsSince1970: row["blockedAt"])
            )
        }
        .first { $0.covers(contentType) }
    }

    /// The chat's queued events (typing, receipts): a new disconnect supersedes them. Messages
    /// stay, and go before it; an event in flight is not recalled.
    private static func eventsEndedByDisconnect(connectionHash: String, instance: String, in db: Database) throws -> CoalescingDecision {
        let events = ItemKind.event.priorities
        let seqs = try Int64.fetchAll(
            db.cachedStatement(sql: """
                SELECT seq FROM event INDEXED BY event_waiting_by_connection
                WHERE instance = ? AND connectionHash = ? AND \(waiting) AND state = \(EventState.queued.sql)
                  AND priority BETWEEN \(events.lowerBound) AND \(events.upperBound)
                """),
            arguments: [instance, connectionHash]
        )
        return CoalescingDecision(replaced: seqs.map { ($0, .disconnected) })
    }

    // MARK: Reading

    /// The item `clientToken` names in `scope`; `nil` when there is none.
    /// - Throws: ``QueueCommandError/ambiguous(clientToken:peers:)`` when the scope is everyone's
    ///   and several peers used the token.
    public func event(clientToken: String, in scope: ItemScope = .everyone) async throws -> StoredEvent? {
        try await database.read { db in try Self.item(clientToken, in: scope, db) }
    }

    /// The item `clientToken` names in `scope`, in the caller's transaction.
    static func item(_ clientToken: String, in scope: ItemScope, _ db: Database) throws -> StoredEvent? {
        switch scope {
        case .peer(let peer):
            return try StoredEvent.fetchOne(db.cachedStatement(sql: "SELECT * FROM event WHERE clientToken = ? AND peer = ?"), arguments: [clientToken, peer])
        case .everyone:
            let items = try StoredEvent.fetchAll(db.cachedStatement(sql: "SELECT * FROM event WHERE clientToken = ? LIMIT 10"), arguments: [clientToken])
            guard items.count <= 1 else { throw QueueCommandError.ambiguous(clientToken: clientToken, peers: items.map(\.peer).sorted()) }
            return items.first
        }
    }

    /// The number of events in each state; every state is present. Read from the indexes alone,
    /// without sorting (``countsFromIndexes(_:)``).
    public func countsByState() async throws -> [EventState: Int] {
        try await database.read { db in try Self.countsFromIndexes(db) }.totals
    }

    /// The waiting (queued or sending) events of each instance that has any, and the number of
    /// events in each state (``countsByState()``), from one read: what metrics show.
    public func gaugeCounts() async throws -> (byState: [EventState: Int], waitingByInstance: [String: Int]) {
        let counts = try await database.read { db in try Self.countsFromIndexes(db) }
        return (counts.totals, counts.waitingByInstance)
    }

    /// The number of items of each kind in each state, for the kinds that have any. A walk of the
    /// whole table (the kind is the priority's range, which no index leads with): for `stats`, an
    /// operator's question, not for every request.
    public func countsByKind(in scope: ItemScope = .everyone) async throws -> [ItemKind: [EventState: Int]] {
        let message = ItemKind.message.priorities, disconnect = ItemKind.disconnect.priorities
        let rows = try await database.read { db -> [(String, String, Int)] in
            try Row.fetchAll(db, sql: """
                SELECT CASE WHEN priority BETWEEN \(message.lowerBound) AND \(message.upperBound) THEN 'message'
                            WHEN priority BETWEEN \(disconnect.lowerBound) AND \(disconnect.upperBound) THEN 'disconnect'
                            ELSE 'event' END AS kind, state, COUNT(*) AS n
                FROM event WHERE (? IS NULL OR peer = ?) GROUP BY 1, 2
                """, arguments: [scope.peer, scope.peer]).map { ($0["kind"], $0["state"], $0["n"]) }
        }
        var counts: [ItemKind: [EventState: Int]] = [:]
        for (name, stateName, count) in rows {
            guard let kind = ItemKind(rawValue: name), let state = EventState(rawValue: stateName) else { continue }
            counts[kind, default: Self.zeroCounts][state] = count
        }
        return counts
    }

    /// The number of events in each state for each instance that has any, of everyone or of one
    /// peer (a walk of the table for a peer). Everyone's are read from the indexes alone
    /// (``countsFromIndexes(_:)``).
    public func countsByInstance(in scope: ItemScope = .everyone) async throws -> [String: [EventState: Int]] {
        guard let peer = scope.peer else {
            return try await database.read { db in try Self.countsFromIndexes(db) }.byInstance
        }
        let rows = try await database.read { db -> [(String, String, Int)] in
            try Row.fetchAll(db, sql: "SELECT instance, state, COUNT(*) AS n FROM event WHERE peer = ? GROUP BY state, instance", arguments: [peer])
                .map { ($0["instance"], $0["state"], $0["n"]) }
        }
        var counts: [String: [EventState: Int]] = [:]
        for (instance, name, count) in rows {
            guard let state = EventState(rawValue: name) else { continue }
            counts[instance, default: Self.zeroCounts][state] = count
        }
        return counts
    }

    /// Every state, each with 0.
    public static let zeroCounts = Dictionary(uniqueKeysWithValues: EventState.allCases.map { ($0, 0) })

    /// Everyone's counts, each state from the partial index that holds it, and only from it (no
    /// index holds every row's state; `OutboxTests` reads the plans), each index read in its own
    /// order (nothing sorted): waiting (queued or sending) from `event_waiting_by_connection` and
    /// queued from `event_due` (sending: the waiting that are not queued); held from
    /// `event_stuck`; sent, failed, expired and superseded from `event_finished`.
    static func countsFromIndexes(_ db: Database) throws -> IndexCounts {
        var counts = IndexCounts()
        for row in try Row.fetchAll(db.cachedStatement(sql: waitingCountsSQL)) {
            counts.waitingByInstance[row[0]] = row[1]
        }
        for row in try Row.fetchAll(db.cachedStatement(sql: queuedCountsSQL)) {
            counts.add(row[1], .queued, row[0])
        }
        for (instance, waiting) in counts.waitingByInstance {
            counts.add(waiting - (counts.byInstance[instance]?[.queued] ?? 0), .sending, instance)
        }
        for row in try Row.fetchAll(db.cachedStatement(sql: heldCountsSQL)) {
            counts.add(row[1], .held, row[0])
        }
        for row in try Row.fetchAll(db.cachedStatement(sql: finishedCountsSQL)) {
            guard let state = EventState(rawValue: row[1]) else { continue }
            counts.add(row[2], state, row[0])
        }
        return counts
    }

    /// What ``countsFromIndexes(_:)`` finds.
    struct IndexCounts {
        var totals = Outbox.zeroCounts
        var byInstance: [String: [EventState: Int]] = [:]
        var waitingByInstance: [String: Int] = [:]

        mutating func add(_ count: Int, _ state: EventState, _ instance: String) {
            totals[state, default: 0] += count
            byInstance[instance, default: Outbox.zeroCounts][state, default: 0] += count
        }
    }

    static let waitingCountsSQL = "SELECT instance, COUNT(*) FROM event INDEXED BY event_waiting_by_connection WHERE \(waiting) GROUP BY instance"
    static let queuedCountsSQL = "SELECT instance, COUNT(*) FROM event INDEXED BY event_due WHERE state = \(EventState.queued.sql) GROUP BY instance"
    static let heldCountsSQL = """
        SELECT instance, COUNT(*) FROM event INDEXED BY event_stuck WHERE \(stuck) AND state = \(EventState.held.sql) GROUP BY instance
        """
    static let finishedCountsSQL = "SELECT instance, state, COUNT(*) FROM event INDEXED BY event_finished WHERE \(finished) GROUP BY instance, state"

    /// The counts of every instance added up: ``countsByState()`` without a second walk of the
    /// table, for callers that need both.
    public static func totals(_ byInstance: [String: [EventState: Int]]) -> [EventState: Int] {
        var totals = zeroCounts
        for counts in byInstance.values {
            for (state, count) in counts { totals[state, default: 0] += count }
        }
        return totals
    }

    /// When the sender next has something to do without being told: the earliest next attempt or
    /// deadline of a queued event that lies after `now`: of `instance`'s events for its next
    /// attempt; of any instance's for a deadline (at worst a wake-up for nothing: the earliest
    /// deadline of one instance would walk past every earlier one of the others).
    public func nextWakeUp(after now: Date, instance: String) async throws -> Date? {
        let now = now.millisecondsSince1970
        let ms = try await database.read { db -> Int64? in
            // event_due is ordered by priority first: one look-up per priority.
            let due = try Int64.fetchOne(
                db.cachedStatement(sql: """
                    SELECT MIN(next) FROM (\(ItemContentType.priorities.map { priority in
                        "SELECT MIN(nextAttemptAt) AS next FROM event INDEXED BY event_due WHERE instance = :instance AND state = \(EventState.queued.sql) AND priority = \(priority) AND nextAttemptAt > :now"
                    }.joined(separator: " UNION ALL ")))
                    """),
                arguments: ["now": now, "instance": instance]
            )
            let deadline = try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT MIN(deadline) FROM event INDEXED BY event_deadline WHERE state IN (\(EventState.queued.sql), \(EventState.sending.sql)) AND deadline > ?"),
                arguments: [now]
            )
            return [due, deadline].compactMap { $0 }.min()
        }
        return ms.map(Date.init(millisecondsSince1970:))
    }

    /// The oldest waiting (queued or sending) event: when it was accepted and how long ago, in
    /// seconds; `nil` when none waits (known without a query). A walk of the waiting events' index
    /// (not of the finished ones kept for retention): for health, metrics and stats, not for
    /// every request.
    public func oldestWaiting(in scope: ItemScope = .everyone) async throws -> (acceptedAt: Date, age: TimeInterval)? {
        guard waitingCount > 0 else { return nil }
        let milliseconds = try await database.read { db in
            try Int64.fetchOne(db, sql: """
                SELECT acceptedAt FROM event WHERE seq = (
                    SELECT MIN(seq) FROM event INDEXED BY event_waiting_by_connection
                    WHERE state IN (\(EventState.queued.sql), \(EventState.sending.sql)) AND (? IS NULL OR peer = ?))
                """, arguments: [scope.peer, scope.peer])
        }
        guard let milliseconds else { return nil }
        let acceptedAt = Date(millisecondsSince1970: milliseconds)
        return (acceptedAt, max(0, clock.now().timeIntervalSince(acceptedAt)))
    }

    /// Erases what finished events left behind in the files: copies the WAL back into the
    /// database and empties it (a TRUNCATE checkpoint), so that no earlier version of a page, with
    /// a token since erased, survives in the WAL. (`secure_delete` already zeroes freed space.)
    /// Then writes zeros where the WAL's frames were, up to the size it had (``WALRefill``), so
    /// that the commits until the next scrub overwrite the file instead of growing it. The janitor
    /// runs it after events finish; the writer, at a clean stop, only empties the WAL.
    ///
    /// A storage fault in the checkpoint (its sync of the database file failed) or in the zeros'
    /// sync stops the writer as a failed commit does: no later write is trusted either.
    public func scrub() async throws {
        let walPath = database.path + "-wal"
        do {
            try await database.writeWithoutTransaction { db in
                let sizeBefore = WALRefill.size(of: walPath)
                _ = try db.checkpoint(.truncate)
                if writer.syncsEachCommit {
                    try WALRefill.fill(walPath, bytes: WALRefill.bytes(sizeBefore: sizeBefore))
                }
            }
        } catch let error as WALSyncError {
            writer.fail(error.description)
            throw error
        } catch {
            if let failure = OutboxError.storageFailure(error) { writer.fail(failure) }
            throw error
        }
    }

    // MARK: Bounds

    /// The number of waiting (queued or sending) events, as the capacity check sees it.
    public var waitingCount: Int { waiting.value }

    /// With `maxDatabaseMegabytes`, new events may fill 90% of it: the rest stays for the sender
    /// to record outcomes, so that events can finish and the janitor can free their space. (Were
    /// new events allowed to the last page, nothing could move any more.)
    static func checkRoomForNewEvents(_ limits: OutboxLimits, watch: SizeWatch, in db: Database) throws {
        guard limits.maxDatabaseMegabytes > 0, watch.mustCheck, let pages = try PageFigures.read(in: db) else { return }
        watch.checked(roomBytes: (pages.limit * 9 / 10 - pages.used) * pages.size)
        if pages.used * 10 >= pages.limit * 9 {
            throw OutboxError.storageFull("the database reached 90% of outbox.maxDatabaseMegabytes (\(limits.maxDatabaseMegabytes) MiB); the rest is kept for recording outcomes")
        }
    }

    /// The database's bytes in use (its pages less the free ones) and its limit
    /// (`outbox.maxDatabaseMegabytes`; `nil`: none; new items get 507 from 90% of it), for the metrics.
    public func databaseSize() async throws -> (used: Int64, limit: Int64?) {
        let limit = limits.maxDatabaseMegabytes > 0 ? Int64(limits.maxDatabaseMegabytes) * 1_048_576 : nil
        let used = try await database.read { db in try PageFigures.read(in: db).map { $0.used * $0.size } ?? 0 }
        return (used, limit)
    }

    /// The database's pages as the connection sees them: all of them, the free ones, the limit
    /// (`max_page_count`, meaningful on the writer, where it is set) and their size.
    struct PageFigures {
        var count: Int64
        var free: Int64
        var limit: Int64
        var size: Int64
        /// In use: all less the free ones.
        var used: Int64 { count - free }

        /// A cached statement: prepared at every transaction, this look-up cost a third of an
        /// accepted event (154,000 instructions; BENCHMARKS.md, "Instructions"), and even cached
        /// a submission looks it up only as often as its ``SizeWatch`` says.
        static func read(in db: Database) throws -> PageFigures? {
            try Row.fetchOne(db.cachedStatement(sql: """
                SELECT page_count, freelist_count, max_page_count, page_size FROM pragma_page_count, pragma_freelist_count, pragma_max_page_count, pragma_page_size
                """)).map { row in
                PageFigures(count: row["page_count"], free: row["freelist_count"], limit: row["max_page_count"], size: row["page_size"])
            }
        }
    }

    /// Why events cannot be stored now (storage full), for health; `nil` when they can.
    public var storageProblem: String? { storage.problem }

    /// Ends the items held longer than `limits.holdMax`: `expired`, their connection token (a
    /// credential) erased, and a last error saying why. Returns how many.
    public func expireHeldTooLong() async throws -> Int {
        let now = clock.now().millisecondsSince1970
        let holdMax = limits.holdMax
        return try await write { db, waitingChange in
            try EventTransition.expireHeld.apply(
                where: "state = \(EventState.held.sql) AND updatedAt < :cutoff", indexedBy: "event_stuck",
                arguments: [
                    "now": now, "cutoff": now - Int64(holdMax.timeInterval * 1000),
                    "message": "held longer than outbox.holdMaxSeconds (\(Int(holdMax.timeInterval)) s): ended, and its connection token erased",
                ],
                in: db, waitingChange: &waitingChange
            ).changed
        }
    }

    /// Deletes up to `limit` finished events last changed before the retention period, connection
    /// blocks that have run out, and what was kept of chats and peers idle for `connectionIdle`.
    /// - Returns: how many events were deleted.
    public func deleteExpiredHistory(limit: Int = 1_000) async throws -> Int {
        let now = clock.now().millisecondsSince1970
        let cutoff = now - Int64(limits.retention.timeInterval * 1000)
        return try await writer.perform { db in
            try db.execute(
                sql: """
                    DELETE FROM event WHERE seq IN (
                        WITH RECURSIVE \(Self.finishedInstances)
                        SELECT e.seq FROM finished_instance i, finished_state s, event e INDEXED BY event_finished
                        WHERE e.instance = i.instance AND e.state = s.name AND \(Self.finished) AND e.updatedAt < ?
                        LIMIT ?)
                    """,
                arguments: [cutoff, limit]
            )
            let deleted = db.changesCount
            try db.execute(sql: "DELETE FROM connection_block WHERE expiresAt <= ?", arguments: [now])
            let idleSince = now - Int64(limits.connectionIdle.timeInterval * 1000)
            _ = try deleteIdleConnections(lastUsedBefore: idleSince, in: db)
            // When chats and peers were last served, for those served a while ago: fair share
            // puts a missing one first, where its old time put it anyway. So the tables hold the
            // recent work only, not every chat ever served.
            try db.execute(sql: "DELETE FROM connection_served WHERE servedAt < ?", arguments: [idleSince])
            try db.execute(sql: "DELETE FROM peer_served WHERE servedAt < ?", arguments: [idleSince])
            return deleted
        }
    }

    /// Free pages the file keeps for new items rather than give back: a quarter of it, and at
    /// least 1,024 pages (4 MiB at SQLite's default page size), so a steady load does not shrink
    /// and grow the file in turn.
    static func freePagesKept(pageCount: Int64) -> Int64 {
        max(1_024, pageCount / 4)
    }

    /// Gives free pages beyond ``freePagesKept(pageCount:)`` back to the filesystem (SQLite's
    /// incremental vacuum, `auto_vacuum = INCREMENTAL`), at most `step` pages a transaction so
    /// that submissions go on between them; the file shrinks at the next checkpoint
    /// (``scrub()``). Returns how many pages were given back; 0 for a database without
    /// incremental vacuum.
    public func reclaimFreePages(step: Int64 = 2_048) async throws -> Int64 {
        var total: Int64 = 0
        while !Task.isShuttingDownGracefully {
            let released = try await writer.perform { db -> Int64 in
                guard try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") == 2, let before = try PageFigures.read(in: db) else { return 0 }
                let excess = before.free - Self.freePagesKept(pageCount: before.count)
                guard excess > 0 else { return 0 }
                try db.execute(sql: "PRAGMA incremental_vacuum(\(min(excess, step)))")
                return before.free - (try PageFigures.read(in: db)?.free ?? before.free)
            }
            total += released
            if released < step { return total }
        }
        return total
    }
}

extension Date {
    /// The date as the outbox gives it back after storing it.
    var truncatedToMilliseconds: Date {
        Date(millisecondsSince1970: millisecondsSince1970)
    }
}
