import Foundation
import ParticipantOutbox
import Synchronization

/// A `Clock` the test moves by hand, with the time of day that goes with it: sleepers wake only
/// when ``advance(by:)`` reaches their deadline (or their task is cancelled), and the test can
/// wait until the code under test sleeps (``wakeUps``) before it moves the time.
///
/// Written here rather than taken from pointfreeco/swift-clocks: its `TestClock` cannot tell a
/// test who sleeps until when, so a test would have to yield and hope the sender went to sleep
/// before it advances; this one lets the test wait for exactly that.
package final class ManualClock: Clock, Sendable {
    package struct Instant: InstantProtocol {
        /// Time since the clock was made.
        package var offset: Duration

        package func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        package func duration(to other: Instant) -> Duration { other.offset - offset }
        package static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var deadline: Duration
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var elapsed: Duration = .zero
        var sleepers: [UInt64: Sleeper] = [:]
        var nextID: UInt64 = 0
    }

    package init() {}

    private let start = Date(timeIntervalSince1970: 1_700_000_000)
    private let state = Mutex(State())

    package var now: Instant { Instant(offset: elapsed) }
    package var minimumResolution: Duration { .zero }

    /// The time of day: a fixed start plus how far the clock was moved.
    package var date: Date { start.addingTimeInterval(elapsed.timeInterval) }
    package var wallClock: WallClock { WallClock(now: { self.date }) }
    /// Readings of this clock from now on, as the sender and the fleet take them.
    package var stopwatch: Stopwatch { Stopwatch(self) }

    /// How far the clock was moved since it was made.
    package var elapsed: Duration { state.withLock { $0.elapsed } }

    /// When each task sleeping on this clock wakes, as ``elapsed`` readings.
    package var wakeUps: [Duration] { state.withLock { $0.sleepers.values.map(\.deadline) }.sorted() }

    /// Moves the time on and wakes every sleeper whose deadline it reached.
    package func advance(by duration: Duration) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.elapsed += duration
            let due = state.sleepers.filter { $0.value.deadline <= state.elapsed }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    package func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if Task.isCancelled || deadline.offset <= state.elapsed { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline.offset, continuation: continuation)
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
