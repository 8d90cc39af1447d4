import Synchronization

/// What the daemon did since it started, counted as it happens: items accepted (stored to be
/// sent), sent, failed and expired. The API and the senders count; the periodic summary line
/// (`log.summarySeconds`) tells the difference between two readings, since the lifecycle lines
/// (`Event accepted`, `Event sent`) are logged at `debug`.
public final class ActivityTally: Sendable {
    private let accepted = Atomic<Int>(0)
    private let sent = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)
    private let expired = Atomic<Int>(0)

    public init() {}

    public func countAccepted() { accepted.add(1, ordering: .relaxed) }
    public func countSent() { sent.add(1, ordering: .relaxed) }
    public func countFailed(_ count: Int = 1) { failed.add(count, ordering: .relaxed) }
    public func countExpired(_ count: Int = 1) { expired.add(count, ordering: .relaxed) }

    /// The counts now.
    public func reading() -> Activity {
        Activity(
            accepted: accepted.load(ordering: .relaxed), sent: sent.load(ordering: .relaxed),
            failed: failed.load(ordering: .relaxed), expired: expired.load(ordering: .relaxed)
        )
    }
}

/// Counts of items by what happened to them: since the start (``ActivityTally/reading()``), or
/// between two readings (``since(_:)``).
public struct Activity: Sendable, Equatable {
    public var accepted = 0
    public var sent = 0
    public var failed = 0
    public var expired = 0

    public init(accepted: Int = 0, sent: Int = 0, failed: Int = 0, expired: Int = 0) {
        self.accepted = accepted
        self.sent = sent
        self.failed = failed
        self.expired = expired
    }

    /// What happened between `earlier` and this reading.
    public func since(_ earlier: Activity) -> Activity {
        Activity(accepted: accepted - earlier.accepted, sent: sent - earlier.sent, failed: failed - earlier.failed, expired: expired - earlier.expired)
    }

    /// Nothing happened.
    public var isEmpty: Bool { self == Activity() }
}
