import ParticipantOutbox
import Synchronization

/// `operation`'s outcome, or `nil` once `limit` has passed on `stopwatch`'s clock, whichever
/// comes first. The caller's cancellation ends the wait at once with `CancellationError`.
///
/// Unlike a task group racing a sleep, this does not wait for `operation` after the limit: it is
/// cancelled and left to end on its own. postgres-nio ends no query in flight when its task is
/// cancelled (`PostgresClient.query` waits for the server's answer, and a new connection's
/// start-up for the server's first message), and a task group waits for every child: a limit
/// built on one lasted as long as a hung database did. Written here because no library this
/// package uses has a deadline that gives up on its operation (swift-async-algorithms has none;
/// NIO's are for futures, not tasks).
func withinDeadline<T: Sendable>(
    _ limit: Duration, on stopwatch: Stopwatch, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T? {
    let first = FirstOutcome<T?>()
    first.own(Task {
        do {
            first.offer(.success(try await operation()))
        } catch {
            first.offer(.failure(error))
        }
    })
    first.own(Task {
        guard (try? await stopwatch.sleep(for: limit)) != nil else { return }
        first.offer(.success(nil))
    })
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { first.wait($0) }
    } onCancel: {
        first.offer(.failure(CancellationError()))
    }
}

/// The first outcome offered, given to the one caller waiting for it; the tasks it owns are
/// cancelled once there is one.
final class FirstOutcome<T: Sendable>: Sendable {
    private struct State {
        var outcome: Result<T, any Error>?
        var waiting: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// The first call decides; later ones do nothing.
    func offer(_ outcome: Result<T, any Error>) {
        let (waiting, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            guard state.outcome == nil else { return (nil, []) }
            state.outcome = outcome
            defer {
                state.waiting = nil
                state.tasks = []
            }
            return (state.waiting, state.tasks)
        }
        for task in tasks { task.cancel() }
        waiting?.resume(with: outcome)
    }

    /// Resumes `continuation` with the outcome, now or once there is one.
    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        let outcome = state.withLock { state -> Result<T, any Error>? in
            if state.outcome == nil { state.waiting = continuation }
            return state.outcome
        }
        if let outcome { continuation.resume(with: outcome) }
    }

    /// Cancelled once there is an outcome (at once when there is one already).
    func own(_ task: Task<Void, Never>) {
        let decided = state.withLock { state -> Bool in
            if state.outcome == nil { state.tasks.append(task) }
            return state.outcome != nil
        }
        if decided { task.cancel() }
    }
}
