/// Where an event is in its life in the outbox.
///
/// `queued` and `sending` are waiting (counted against the capacity, in order per connection);
/// `held` is neither waiting nor final; the others are final. Which state may follow which is one
/// table in the outbox (`EventTransition`).
public enum EventState: String, CaseIterable, Codable, Sendable {
    /// Stored, waiting for its next attempt.
    case queued
    /// Leased by the sender; a request to the service is in flight.
    case sending
    /// The service accepted it; `id` and `absoluteTime` are set.
    case sent
    /// The service refused it for good (400, 403, 409, ...); `lastError` says why.
    case failed
    /// Its delivery deadline passed before the service accepted it. Never sent late.
    case expired
    /// Replaced by a newer event before it was sent (coalescing); `supersededBy` names that event.
    case superseded
    /// Put aside by an operator (`participantctl hold`): not sent, not expired, and not holding up
    /// its connection's later events, until released (`participantctl release`).
    case held

    public var isFinal: Bool {
        switch self {
        case .queued, .sending, .held: false
        case .sent, .failed, .expired, .superseded: true
        }
    }
}
