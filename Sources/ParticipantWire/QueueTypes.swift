import Foundation

/// `GET /v1/events`: events of the outbox, as `participantctl list` asks for them.
public struct EventList: Codable, Sendable, Equatable {
    public var events: [EventRecord]

    public init(events: [EventRecord]) {
        self.events = events
    }
}

/// What a queue command did to events.
public enum QueueAction: String, Codable, Sendable, CaseIterable {
    case retried, held, released, deleted, flushed

    /// Whether the events it changed may be due now, so that the sender should look at once.
    public var makesEventsDue: Bool {
        switch self {
        case .retried, .released, .flushed: true
        case .held, .deleted: false
        }
    }
}

/// The answer to a queue command that changes events (retry, hold, release, delete, flush).
public struct QueueChange: Codable, Sendable, Equatable {
    /// What was done: a ``QueueAction``'s name.
    public var action: String
    /// How many events it changed.
    public var changed: Int
    /// The event as it is now (as it was, for `deleted`); `nil` for commands on many events.
    public var event: EventRecord?

    public init(action: QueueAction, changed: Int, event: EventRecord?) {
        self.action = action.rawValue
        self.changed = changed
        self.event = event
    }
}

/// `GET /v1/queue/stats`: `participantctl stats`.
public struct QueueStats: Codable, Sendable, Equatable {
    /// Events in each state.
    public var counts: [String: Int]
    /// When the oldest waiting (queued or sending) event was accepted.
    public var oldestWaitingAcceptedAt: Date?
    public var oldestWaitingAgeSeconds: Double?
    /// Events that ended `sent` in the last minute, and per second over it.
    public var sentLastMinute: Int
    public var sendRatePerSecond: Double
    public var requestsInFlight: Int
    /// The pacing rate now (requests per second; lower than configured after throttling). 0: pacing off.
    public var quotaRate: Double

    public init(
        counts: [String: Int], oldestWaitingAcceptedAt: Date?, oldestWaitingAgeSeconds: Double?, sentLastMinute: Int,
        sendRatePerSecond: Double, requestsInFlight: Int, quotaRate: Double
    ) {
        self.counts = counts
        self.oldestWaitingAcceptedAt = oldestWaitingAcceptedAt
        self.oldestWaitingAgeSeconds = oldestWaitingAgeSeconds
        self.sentLastMinute = sentLastMinute
        self.sendRatePerSecond = sendRatePerSecond
        self.requestsInFlight = requestsInFlight
        self.quotaRate = quotaRate
    }
}
