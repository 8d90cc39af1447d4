import Foundation

/// The time of day, injected so that tests can move it.
public struct WallClock: Sendable {
    public var now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date) {
        self.now = now
    }

    public static let system = WallClock(now: { Date() })
}

extension Date {
    /// Milliseconds since 1970: how the outbox stores times (INTEGER columns compare and index cheaply).
    package var millisecondsSince1970: Int64 {
        Int64((timeIntervalSince1970 * 1000).rounded(.down))
    }

    package init(millisecondsSince1970 ms: Int64) {
        self.init(timeIntervalSince1970: TimeInterval(ms) / 1000)
    }
}
