import Foundation
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import Synchronization

/// A clock the test moves by hand: the time of day, a monotonic reading, and sleepers that wake
/// only when ``advance(by:)`` moves the time past their deadline (or their task is cancelled).
final class ManualClock: Sendable {
    private struct Sleeper {
        var deadline: Duration
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var elapsed: Duration = .zero
        var sleepers: [UInt64: Sleeper] = [:]
        var nextID: UInt64 = 0
    }

    private let start = Date(timeIntervalSince1970: 1_700_000_000)
    private let state = Mutex(State())

    var now: Date { start.addingTimeInterval(state.withLock { $0.elapsed }.timeInterval) }
    var wallClock: WallClock { WallClock(now: { self.now }) }
    var senderClock: SenderClock {
        SenderClock(wall: wallClock, uptime: { self.state.withLock { $0.elapsed } }, sleep: { try await self.sleep(for: $0) })
    }

    /// How far the clock was moved since it was made.
    var elapsed: Duration { state.withLock { $0.elapsed } }

    /// When each task sleeping on this clock wakes, as ``elapsed`` readings.
    var wakeUps: [Duration] { state.withLock { $0.sleepers.values.map(\.deadline) }.sorted() }

    /// Moves the time on and wakes every sleeper whose deadline it reached (within a microsecond:
    /// a sleep computed from seconds in a `Double` lands a few nanoseconds off the millisecond).
    func advance(by seconds: TimeInterval) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.elapsed += .milliseconds(Int64((seconds * 1000).rounded()))
            let due = state.sleepers.filter { $0.value.deadline <= state.elapsed + .microseconds(1) }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    func sleep(for duration: Duration) async throws {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if Task.isCancelled || duration <= .zero { return true }
                    state.sleepers[id] = Sleeper(deadline: state.elapsed + duration, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            try Task.checkCancellation()
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }
}
