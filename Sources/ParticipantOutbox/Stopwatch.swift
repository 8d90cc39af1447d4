/// A clock read as time since a fixed point: the monotonic reading the pacer, the outage detector
/// and the sender's heartbeat compare, and the clock their waits sleep on.
///
/// It wraps any `Clock<Duration>`: `ContinuousClock` in the daemon, a test's manual clock in tests,
/// so that no test sleeps for a backoff. The time of day a record carries is ``WallClock``'s.
public struct Stopwatch: Sendable {
    /// The clock the readings come from and the waits sleep on.
    public let clock: any Clock<Duration>
    private let read: @Sendable () -> Duration

    /// Starts at `clock`'s now.
    public init(_ clock: any Clock<Duration>) {
        self.clock = clock
        self.read = Self.elapsedReading(clock)
    }

    /// The system's monotonic clock.
    public static var continuous: Stopwatch { Stopwatch(ContinuousClock()) }

    /// Time since the stopwatch started; never goes back.
    public var elapsed: Duration { read() }

    /// Sleeps for `duration` on the clock; throws when the task is cancelled.
    public func sleep(for duration: Duration) async throws {
        try await clock.sleep(for: duration)
    }

    private static func elapsedReading<C: Clock<Duration>>(_ clock: C) -> @Sendable () -> Duration {
        let start = clock.now
        return { start.duration(to: clock.now) }
    }
}
