import Foundation
import ParticipantOutbox
import ParticipantWire

/// The sender's decision on one attempt, as a value: what the outbox records for the event, and
/// what the answer says about the service. A pure function of (event, result, now, random).
public struct AttemptDecision: Sendable, Equatable {
    /// What the outbox records: sent, retry at a time, failed (with the connection's block), expired.
    public var transition: DeliveryTransition
    /// What the answer means for pacing and outage detection.
    public var meaning: ServiceAnswer.Meaning
    /// The backoff drawn, when the transition is a retry or an expiry for want of time.
    public var retryDelay: Duration?

    /// Decides the outcome of an attempt.
    /// - Parameters:
    ///   - attempts: the attempts made at the event so far, this one included (1 after the first).
    ///   - deadline: when the event expires; a retry that would come at or after it expires it now.
    ///   - contentType: the event's content type (a 409 on a receipt blocks the connection's receipts).
    ///   - result: how the attempt ended.
    ///   - now: the time of day the attempt ended.
    ///   - random: a number in `0..<1` for the backoff's jitter.
    ///   - retry: the backoff policy.
    public static func decide(
        attempts: Int, deadline: Date, contentType: EventContentType, result: SendEventResult,
        now: Date, random: Double, retry: RetryPolicy
    ) -> AttemptDecision {
        let meaning = ServiceAnswer.meaning(of: result, for: contentType)
        switch meaning {
        case .sent(let id, let absoluteTime):
            return AttemptDecision(transition: .sent(id: id, absoluteTime: absoluteTime), meaning: meaning)
        case .fail(let error, _, let block):
            return AttemptDecision(transition: .failed(error, block: block), meaning: meaning)
        case .retry(let error, _):
            let delay = retry.delay(afterAttempt: attempts, random: random)
            let nextAttempt = now.addingTimeInterval(delay.timeInterval)
            guard nextAttempt < deadline else {
                let expired = ErrorBody(
                    code: "DeadlineExceeded",
                    message: "the deadline passed before the service accepted the event; last error: \(error.code): \(error.message)"
                )
                return AttemptDecision(transition: .expired(expired), meaning: meaning, retryDelay: delay)
            }
            return AttemptDecision(transition: .retry(at: nextAttempt, error: error), meaning: meaning, retryDelay: delay)
        }
    }
}
