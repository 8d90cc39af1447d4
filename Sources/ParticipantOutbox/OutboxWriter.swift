import Dispatch
import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Synchronization

/// The outbox's one writer: it commits the writes of many concurrent callers together in one
/// transaction (group commit).
///
/// A caller's write is acknowledged only after the transaction holding it has committed and,
/// with a ``WALSync`` (`outbox.syncEveryCommit`, the default), after the WAL has been synced to
/// disk. While one commit is in progress, new writes gather; the next transaction takes them all
/// as soon as the previous commit returns. There is no timer: at low load a write commits at once,
/// at high load one transaction and one sync cover many writes, so durable throughput grows with
/// concurrency.
///
/// The sync is the writer's own, not SQLite's (`synchronous=NORMAL`, then ``WALSync/sync()``):
/// while a second thread syncs one transaction, the writer's thread writes the next, instead of
/// waiting for the disk between them. A sync covers every transaction committed before it, and
/// each transaction's writes are acknowledged once one has covered it. A transaction committed
/// while the disk is idle and nothing else waits is synced on the writer's thread itself, as
/// `synchronous=FULL` would, with no hand-off between threads in one client's wait. A committed
/// transaction is visible to readers before its sync; what leaves the daemon is leased by a
/// later write, acknowledged only after a sync that also covers the event's own transaction.
///
/// A write that throws (a uniqueness conflict, a broken invariant, an item not found) fails alone
/// and does not take its neighbours in the batch down with it. Writes almost never throw, so a
/// transaction first runs them one after the other as they are; when one throws, it is rolled
/// back and run again with each write in a savepoint of its own, which rolls back alone. (A
/// savepoint for every write cost about 57,000 instructions an accepted event at 64 clients, a
/// ninth of it: BENCHMARKS.md, "Issue 31".) So a write may run twice, and does nothing but
/// its database work.
///
/// Run it in the daemon's `ServiceGroup` before every service that writes: on graceful shutdown it
/// commits what is pending and then refuses new writes.
///
/// Fail-stop: a commit that fails with an I/O error (a failed sync above all) or finds the file
/// damaged acknowledges none of its writes, and the writer refuses every write from then on
/// (``OutboxError/failed(_:)``), logs why at `critical` and makes `run()` throw, which stops the
/// daemon so that systemd restarts it and SQLite's recovery reads back what the disk really holds.
public final class OutboxWriter: Service, Sendable {
    /// The most writes one transaction takes; the rest wait for the next one.
    static let maxBatchSize = 4_096
    /// The most items (events, messages, leases) one transaction takes, counted by each write's
    /// weight: a batch of 500 events weighs 500. So one transaction holds thousands of items, not
    /// millions (4,096 writes of 500), and the sender's writes wait for one such commit at most.
    static let maxBatchWeight = 4_096

    private let database: any DatabaseWriter
    /// Released once the writer has committed its last write.
    private let lock: DatabaseLock?
    /// Synced before a commit's writes are acknowledged; `nil`: acknowledged as SQLite's commit
    /// returns (`outbox.syncEveryCommit: false`, or a database of a test's).
    private let commitSync: (any CommitSync)?
    private let logger: Logger
    private let state = Mutex(State())
    /// Signalled once for each time the writer thread goes to sleep (`State.sleeping`).
    private let wakeUp = DispatchSemaphore(value: 0)
    /// Signalled once for each time the sync thread goes to sleep (`State.syncerSleeping`).
    private let syncerWakeUp = DispatchSemaphore(value: 0)
    /// Signalled when the sync thread has ended.
    private let syncerEnded = DispatchSemaphore(value: 0)
    /// The writer connection's ``DirectStatement`` statements, looked up in GRDB's cache once
    /// for the connection's life instead of once a write: used only inside its transactions, on
    /// the writer's thread, and dropped when that thread ends.
    private let statements = Mutex<DirectStatements?>(nil)

    private struct State {
        var pending: [any PendingWrite] = []
        /// The writer thread waits on `wakeUp`: the next write or `close()` must signal it.
        var sleeping = false
        var closed = false
        /// Why the writer stopped for good (fail-stop); `nil`: it did not.
        var failure: String?
        /// Writes of committed transactions, in commit order, for the sync thread's next sync.
        var unsynced: [any PendingWrite] = []
        /// The sync thread waits on `syncerWakeUp`: the next hand-over must signal it.
        var syncerSleeping = false
        /// The sync thread is syncing writes it took from `unsynced`.
        var syncing = false
        /// The writer's thread has ended: the sync thread ends once `unsynced` is empty.
        var writerEnded = false
    }

    init(database: any DatabaseWriter, lock: DatabaseLock? = nil, commitSync: (any CommitSync)? = nil, logger: Logger) {
        self.database = database
        self.lock = lock
        self.commitSync = commitSync
        self.logger = logger
    }

    /// Runs `work` inside the next group transaction and returns its result once that
    /// transaction has committed.
    /// - Parameter weight: how many items the write stores or changes (at least 1), counted
    ///   against ``maxBatchWeight``.
    func perform<T: Sendable>(weight: Int = 1, _ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            perform(weight: weight, work) { continuation.resume(with: $0) }
        }
    }

    /// ``perform(weight:_:)`` for a caller that is not a task: `completion` gets the result once
    /// the transaction has committed (or failed), on the writer's thread, or at once on the
    /// caller's when the writer takes no more writes. It must not block: the next commit waits
    /// for it. (The socket API's hot routes answer from it with no task between the event loop
    /// and the writer.)
    func perform<T: Sendable>(
        weight: Int = 1, _ work: @escaping @Sendable (Database) throws -> T, completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        perform(weight: weight, direct: { statements in try work(statements.db) }, completion: completion)
    }

    /// ``perform(weight:_:completion:)`` for a write that runs ``DirectStatement``s: `work` gets
    /// the writer connection's statements (``DirectStatements``, with the connection as `db`).
    func perform<T: Sendable>(
        weight: Int = 1, direct work: @escaping @Sendable (DirectStatements) throws -> T, completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        let write = Write(work: work, completion: completion, weight: max(1, weight))
        let (refusal, wake) = state.withLock { state -> (OutboxError?, Bool) in
            guard !state.closed else { return (state.failure.map(OutboxError.failed) ?? .closed, false) }
            state.pending.append(write)
            defer { state.sleeping = false }
            return (nil, state.sleeping)
        }
        if let refusal {
            completion(.failure(refusal))
            return
        }
        if wake { wakeUp.signal() }
    }

    /// Commits on a thread of its own, not on Swift's shared concurrency pool: there, each
    /// commit would wait twice behind the request handlers for a pool thread (to start and to go
    /// on after SQLite returns), and every waiting write's latency with it. Only this thread
    /// blocks on SQLite and the disk; callers are resumed as soon as their transaction committed.
    public func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
                    if let commitSync = self.commitSync {
                        let syncer = Thread {
                            Thread.current.name = "outbox-sync"
                            self.syncLoop(commitSync)
                            self.syncerEnded.signal()
                        }
                        syncer.start()
                    }
                    let thread = Thread {
                        Thread.current.name = "outbox-writer"
                        while let batch = self.nextBatch() {
                            self.commit(batch)
                        }
                        // Finalized before the connection closes, which they would otherwise keep open.
                        self.statements.withLock { $0 = nil }
                        if self.commitSync != nil {
                            self.endSyncLoop()
                            self.syncerEnded.wait()
                        }
                        // After a storage failure nothing more is written, not even the WAL's checkpoint.
                        if self.failure == nil { self.scrubAtStop() }
                        self.lock?.release()
                        finished.resume()
                    }
                    thread.start()
                }
            } onGracefulShutdown: {
                self.close()
            }
        } onCancel: {
            self.close()
        }
        if let failure {
            // The daemon's service group stops everything else and the process exits non-zero.
            throw OutboxError.failed(failure)
        }
        logger.debug("Outbox writer stopped")
    }

    /// Whether a commit's writes wait for a ``CommitSync`` (`outbox.syncEveryCommit`).
    var syncsEachCommit: Bool { commitSync != nil }

    /// Writes waiting for the next transaction (tests: to know several will share one).
    var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Writes committed and waiting for the sync thread's next sync (tests).
    var unsyncedCount: Int { state.withLock { $0.unsynced.count } }

    /// Why the writer stopped for good; `nil` while it has not.
    public var failure: String? { state.withLock { $0.failure } }

    /// After the last write: the WAL copied back and emptied, so that no token of a finished
    /// event stays in it while the daemon is stopped (see ``Outbox/scrub()``).
    private func scrubAtStop() {
        do {
            try database.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        } catch {
            logger.warning("The outbox's WAL could not be emptied at stop; it is at the next start", metadata: ["error": "\(error)"])
        }
    }

    /// How many of the pending writes (their weights, in order) the next transaction takes: as
    /// many as fit in `maxWeight` and `maxWrites`, and always the first, however heavy.
    static func batchLength(weights: some Sequence<Int>, maxWeight: Int, maxWrites: Int) -> Int {
        var count = 0, total = 0
        for weight in weights {
            guard count < maxWrites, count == 0 || total + weight <= maxWeight else { break }
            count += 1
            total += weight
        }
        return count
    }

    /// Refuses new writes; those already pending are still committed.
    func close() {
        let wake = state.withLock { state in
            state.closed = true
            defer { state.sleeping = false }
            return state.sleeping
        }
        if wake { wakeUp.signal() }
    }

    /// The writes waiting now (at most `maxBatchSize`, `maxBatchWeight` items), blocking the writer thread until there is
    /// one; `nil` once closed and drained.
    private func nextBatch() -> [any PendingWrite]? {
        while true {
            let (batch, closed) = state.withLock { state in
                let count = Self.batchLength(weights: state.pending.lazy.map(\.weight), maxWeight: Self.maxBatchWeight, maxWrites: Self.maxBatchSize)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                if count == 0 && !state.closed { state.sleeping = true }
                return (batch, state.closed)
            }
            if !batch.isEmpty { return batch }
            if closed { return nil }
            wakeUp.wait()
        }
    }

    private func commit(_ batch: [any PendingWrite]) {
        // A write that hits a full disk may take the whole transaction down with it (SQLite then
        // rolls back, and the commit fails as "aborted"): the batch failed for lack of space.
        let full = Mutex<String?>(nil)
        let started = ContinuousClock.now
        do {
            let changedRows: Bool
            do {
                changedRows = try transaction(batch, inSavepoints: false, full: full)
            } catch is WriteUndone where batch.count > 1 {
                // One write failed and the whole transaction was rolled back: again, each write
                // in a savepoint, so that the one that fails is undone alone.
                full.withLock { $0 = nil }
                changedRows = try transaction(batch, inSavepoints: true, full: full)
            }
            committed(batch, changedRows: changedRows)
            logger.trace("Outbox commit", metadata: [
                "outbox.batch_size": "\(batch.count)",
                "outbox.commit_ms": "\(((ContinuousClock.now - started).timeInterval * 1000).rounded())",
            ])
        } catch is WriteUndone {
            // A write alone in its transaction failed: rolled back, it gets its own error.
            batch[0].complete(commitError: nil)
        } catch {
            if let failure = OutboxError.storageFailure(error) {
                failStop(batch, failure)
                return
            }
            var classified = OutboxError.classify(error)
            if let reason = full.withLock({ $0 }) {
                classified = OutboxError.storageFull(reason)
            }
            logger.error(
                "Outbox commit failed",
                metadata: ["outbox.batch_size": "\(batch.count)", "error": "\(error)"]
            )
            for write in batch {
                write.complete(commitError: classified as? OutboxError ?? OutboxError.storage(String(describing: error)))
            }
        }
    }
}

extension OutboxWriter {
    /// Runs `batch` in one transaction and commits it. Without savepoints, the first write that
    /// fails stops it (``WriteUndone``: the transaction is rolled back); in savepoints, each
    /// failed write is rolled back alone and the others are committed. An I/O error rolls
    /// everything back. Returns whether the transaction inserted, changed or deleted a row.
    private func transaction(_ batch: [any PendingWrite], inSavepoints: Bool, full: borrowing Mutex<String?>) throws -> Bool {
        try database.write { db in
            let changesBefore = db.totalChangesCount
            let statements = self.statements.withLock { kept in
                if let kept, kept.db === db { return kept }
                let made = DirectStatements(db)
                kept = made
                return made
            }
            for write in batch {
                let error = write.apply(statements, inSavepoint: inSavepoints)
                if case .storageFull(let reason)? = error as? OutboxError {
                    full.withLock { $0 = reason }
                }
                // An I/O error inside a write: nothing of the batch is committed.
                if let error, OutboxError.storageFailure(error) != nil { throw error }
                if !inSavepoints, error != nil { throw WriteUndone() }
            }
            return db.totalChangesCount != changesBefore
        }
    }

    /// A storage failure: none of `batch` acknowledged, nothing written from now on, every
    /// pending write refused; the thread's loop ends and `run()` throws.
    private func failStop(_ batch: [any PendingWrite], _ failure: String) {
        // Writes committed but not yet synced are not acknowledged either: after a failed sync
        // their pages may be gone, and after a failed commit they are not synced again.
        let (pending, wake) = state.withLock { state -> ([any PendingWrite], Bool) in
            state.closed = true
            if state.failure == nil { state.failure = failure }
            defer {
                state.pending = []
                state.unsynced = []
                state.sleeping = false
            }
            return (state.unsynced + state.pending, state.sleeping)
        }
        logger.critical(
            "Outbox commit failed on a storage fault: nothing of it was acknowledged; participantd stops accepting and exits, to restart from what is on disk",
            metadata: ["outbox.batch_size": "\(batch.count)", "outbox.refused_pending": "\(pending.count)", "error": "\(failure)"]
        )
        for write in batch + pending {
            write.complete(commitError: OutboxError.failed(failure))
        }
        if wake { wakeUp.signal() }
    }

    /// A storage fault met outside a commit (the WAL's checkpoint, which syncs the database
    /// file): the same fail-stop as a commit's.
    func fail(_ failure: String) {
        failStop([], failure)
    }
}

extension OutboxWriter {
    /// `batch` has committed: its writes are acknowledged now, or, with a ``CommitSync``, once a
    /// sync has covered the transaction: here when the sync thread is idle and no write waits
    /// (one client's wait has no hand-off), else on the sync thread while this one writes on.
    ///
    /// A transaction that changed no row (a lease that found nothing due, a ClientToken already
    /// stored) needs no sync of its own, but may answer from a transaction still being synced
    /// (a resubmission of an event just stored): it is acknowledged at once only when no
    /// commit waits for a sync, else with the next sync.
    private func committed(_ batch: [any PendingWrite], changedRows: Bool) {
        guard let commitSync else {
            for write in batch { write.complete(commitError: nil) }
            return
        }
        enum Next { case acknowledge, syncHere, handedOver(wake: Bool), refused(String) }
        let next = state.withLock { state -> Next in
            if let failure = state.failure { return .refused(failure) }
            let allSynced = state.unsynced.isEmpty && !state.syncing
            if allSynced && !changedRows { return .acknowledge }
            if allSynced && state.pending.isEmpty { return .syncHere }
            state.unsynced.append(contentsOf: batch)
            defer { state.syncerSleeping = false }
            return .handedOver(wake: state.syncerSleeping)
        }
        switch next {
        case .acknowledge:
            for write in batch { write.complete(commitError: nil) }
        case .syncHere:
            syncAndAcknowledge(batch, commitSync)
        case .handedOver(let wake):
            if wake { syncerWakeUp.signal() }
        case .refused(let failure):
            for write in batch { write.complete(commitError: OutboxError.failed(failure)) }
        }
    }

    /// Syncs the WAL, then acknowledges `writes`; a failed sync is a storage failure (fail-stop):
    /// none of them is acknowledged.
    private func syncAndAcknowledge(_ writes: [any PendingWrite], _ commitSync: any CommitSync) {
        do {
            try commitSync.sync()
        } catch {
            failStop(writes, "the outbox's WAL could not be synced: \(error)")
            return
        }
        for write in writes { write.complete(commitError: nil) }
    }

    /// The sync thread: syncs what the writer handed over since its last sync, all of it at once.
    private func syncLoop(_ commitSync: any CommitSync) {
        while true {
            let (writes, ended) = state.withLock { state -> ([any PendingWrite], Bool) in
                let writes = state.unsynced
                state.unsynced = []
                state.syncing = !writes.isEmpty
                if writes.isEmpty && !state.writerEnded { state.syncerSleeping = true }
                return (writes, state.writerEnded)
            }
            if writes.isEmpty {
                if ended { return }
                syncerWakeUp.wait()
                continue
            }
            syncAndAcknowledge(writes, commitSync)
            state.withLock { $0.syncing = false }
        }
    }

    /// Called by the writer's thread after its last commit: the sync thread syncs what is left
    /// and ends.
    private func endSyncLoop() {
        let wake = state.withLock { state in
            state.writerEnded = true
            defer { state.syncerSleeping = false }
            return state.syncerSleeping
        }
        if wake { syncerWakeUp.signal() }
    }
}

/// Rolls back a transaction run without savepoints, one of whose writes failed.
private struct WriteUndone: Error {}

private protocol PendingWrite: Sendable {
    /// How many items it stores or changes.
    var weight: Int { get }
    /// Runs inside the group transaction, in a savepoint of its own unless `inSavepoint` is
    /// false (then the caller rolls the transaction back if it fails); returns its error, if any.
    /// It may run more than once: the last run's result is the one completed.
    @discardableResult
    func apply(_ statements: DirectStatements, inSavepoint: Bool) -> (any Error)?
    /// Called once the transaction has committed (`nil`) or failed.
    func complete(commitError: (any Error)?)
}

/// `result` is written by `apply` and read by `complete`, one after the other on the writer's
/// single flow of control, never at once.
private final class Write<T: Sendable>: PendingWrite, @unchecked Sendable {
    let work: @Sendable (DirectStatements) throws -> T
    let completion: @Sendable (Result<T, any Error>) -> Void
    let weight: Int
    var result: Result<T, any Error>?

    init(work: @escaping @Sendable (DirectStatements) throws -> T, completion: @escaping @Sendable (Result<T, any Error>) -> Void, weight: Int) {
        self.work = work
        self.completion = completion
        self.weight = weight
    }

    func apply(_ statements: DirectStatements, inSavepoint: Bool) -> (any Error)? {
        let db = statements.db
        // SQLite may roll the whole group transaction back on a full disk. A savepoint opened
        // after that would run in a transaction of its own and commit on release: stored, yet
        // reported as failed with the rest of the batch. So nothing runs outside the group's.
        guard db.isInsideTransaction else {
            let error = OutboxError.storage("an earlier write in the same transaction failed and SQLite rolled the transaction back")
            result = .failure(error)
            return error
        }
        if !inSavepoint {
            do {
                result = .success(try work(statements))
                return nil
            } catch {
                let classified = OutboxError.classify(error)
                result = .failure(classified)
                return classified
            }
        }
        do {
            // GRDB's `inSavepoint` compiles its SAVEPOINT and RELEASE statements at every call;
            // these are compiled once per connection.
            try db.cachedStatement(sql: "SAVEPOINT outbox_write").execute()
            let value: T
            do {
                value = try work(statements)
            } catch {
                if db.isInsideTransaction {
                    try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT outbox_write").execute()
                    try db.cachedStatement(sql: "RELEASE SAVEPOINT outbox_write").execute()
                }
                throw error
            }
            try db.cachedStatement(sql: "RELEASE SAVEPOINT outbox_write").execute()
            result = .success(value)
            return nil
        } catch {
            let classified = OutboxError.classify(error)
            result = .failure(classified)
            return classified
        }
    }

    func complete(commitError: (any Error)?) {
        if let commitError {
            completion(.failure(commitError))
        } else {
            completion(result ?? .failure(OutboxError.storage("write was not applied")))
        }
    }
}
