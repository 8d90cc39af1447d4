import Foundation
import ParticipantOutbox
import ParticipantWire

/// What the Participant Service's answers mean: the one place that decides it, after the service's
/// documentation and the AWS SDKs' retry rules (`../shared/reference.md`).
///
/// | answer | meaning |
/// |---|---|
/// | 200 with `Id` and `AbsoluteTime` | sent |
/// | 200 without them | retry (the service may have it; the same ClientToken makes a retry safe) |
/// | 429 | retry, throttled: the service answered, pacing slows down |
/// | 5xx, no connection, reset, timeout | retry; counts toward an outage |
/// | 403 | failed, and with it the connection: the token expired or the chat ended |
/// | 409 on a receipt | failed, and with it the connection's receipts |
/// | any other 4xx (400 `ValidationException`, 409 on another type, 404, ...) | failed, this event alone |
public enum ServiceAnswer {
    /// What an attempt's result means for the event, its connection and the sender.
    public enum Meaning: Sendable, Equatable {
        case sent(id: String, absoluteTime: String, processingStatus: String? = nil)
        /// Worth another try. `throttled`: a 429, which is an answer (pacing slows down); otherwise
        /// the service did not answer usefully, and the attempt counts toward an outage.
        case retry(ErrorBody, throttled: Bool)
        /// Refused for good; `block` says which other events of the connection fail with it.
        case fail(ErrorBody, status: Int, block: ConnectionBlock.Scope?)

        /// Whether the service answered, which ends an outage; only a retry that was not a 429 did not.
        public var serviceAnswered: Bool {
            if case .retry(_, throttled: false) = self { return false }
            return true
        }
    }

    /// Whether an HTTP status other than 200 is worth another try: 429 and 5xx.
    public static func isRetryable(status: Int) -> Bool {
        status == 429 || (500...599).contains(status)
    }

    /// The meaning of `result` for an event of `contentType`.
    public static func meaning(of result: ServiceCallResult, for contentType: ItemContentType) -> Meaning {
        switch result {
        case .accepted(let id, let absoluteTime, let processingStatus):
            return .sent(id: id, absoluteTime: absoluteTime, processingStatus: processingStatus)
        case .transient(let error, let status):
            return .retry(error, throttled: status == 429)
        case .rejected(let error, let status):
            let block: ConnectionBlock.Scope? = switch status {
            case 403: .all
            case 409 where contentType.isReceipt: .receipts
            default: nil
            }
            return .fail(error, status: status, block: block)
        }
    }
}

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
        attempts: Int, deadline: Date, contentType: ItemContentType, result: ServiceCallResult,
        now: Date, random: Double, retry: RetryPolicy
    ) -> AttemptDecision {
        let meaning = ServiceAnswer.meaning(of: result, for: contentType)
        switch meaning {
        case .sent(let id, let absoluteTime, let processingStatus):
            return AttemptDecision(transition: .sent(id: id, absoluteTime: absoluteTime, processingStatus: processingStatus), meaning: meaning)
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
