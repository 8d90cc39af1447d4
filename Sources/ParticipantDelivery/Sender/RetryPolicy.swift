import ParticipantOutbox
import ParticipantWire
/// Capped exponential backoff with full jitter, as the AWS SDKs' standard retry mode computes it.
///
/// The delay after the n-th failed attempt is `random(0, 1) * min(base * 2^(n-1), cap)`
/// (botocore `retries/standard.py`). There is no attempt limit: an event is retried until its
/// deadline, which ``EventDeadlines`` sets per content type.
public struct RetryPolicy: Sendable, Equatable {
    public var baseDelay: Duration = .seconds(1)
    public var maxDelay: Duration = .seconds(20)

    public init(baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(20)) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The delay before the next attempt, after `attempt` attempts (counting from 1) have failed.
    /// - Parameter random: a number in `0..<1` from the caller's random source.
    public func delay(afterAttempt attempt: Int, random: Double) -> Duration {
        .seconds(random * ceiling(afterAttempt: attempt))
    }

    /// The largest delay the jitter can pick after `attempt` failed attempts, in seconds.
    public func ceiling(afterAttempt attempt: Int) -> Double {
        let exponent = Double(max(attempt, 1) - 1)
        let exponential = baseDelay.timeInterval * pow2(exponent)
        return min(exponential, maxDelay.timeInterval)
    }

    private func pow2(_ exponent: Double) -> Double {
        // 2^64 already exceeds any sensible cap; stop there so the product stays finite.
        var result = 1.0
        for _ in 0..<Int(min(exponent, 64)) { result *= 2 }
        return result
    }
}
