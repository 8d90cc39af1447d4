import Foundation
import ParticipantOutbox

/// Time as the sender sees it, injected so that tests move it by hand and no test sleeps for a
/// backoff: the time of day (what the outbox stores), a monotonic reading (pacing, outages, the
/// loop's heartbeat), and sleeping.
public struct SenderClock: Sendable {
    /// The time of day.
    public var wall: WallClock
    /// Time since a fixed point; never goes back.
    public var uptime: @Sendable () -> Duration
    /// Sleeps for a duration on this clock; throws when the task is cancelled.
    public var sleep: @Sendable (Duration) async throws -> Void

    public init(
        wall: WallClock, uptime: @escaping @Sendable () -> Duration, sleep: @escaping @Sendable (Duration) async throws -> Void
    ) {
        self.wall = wall
        self.uptime = uptime
        self.sleep = sleep
    }

    /// The system's clocks: `Date()`, `ContinuousClock` and `Task.sleep`.
    public static var system: SenderClock {
        let start = ContinuousClock.now
        return SenderClock(
            wall: .system, uptime: { ContinuousClock.now - start }, sleep: { try await Task.sleep(for: $0) }
        )
    }

    /// The monotonic reading in seconds, as the pacer and the outage detector take it.
    public var seconds: Double { uptime().timeInterval }
}
