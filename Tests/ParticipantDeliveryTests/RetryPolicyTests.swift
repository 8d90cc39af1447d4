@testable import ParticipantDelivery
@testable import ParticipantOutbox
import Testing

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(baseDelay: .seconds(1), maxDelay: .seconds(20))

    @Test func ceilingDoublesThenCaps() {
        #expect((1...7).map { policy.ceiling(afterAttempt: $0) } == [1, 2, 4, 8, 16, 20, 20])
        #expect(policy.ceiling(afterAttempt: 10_000) == 20)
    }

    @Test func fullJitterScalesTheCeiling() {
        #expect(policy.delay(afterAttempt: 3, random: 0) == .zero)
        #expect(policy.delay(afterAttempt: 3, random: 0.5) == .seconds(2))
        #expect(policy.delay(afterAttempt: 9, random: 0.25) == .seconds(5))
    }

    @Test func delaysStayWithinBounds() {
        var generator = SystemRandomNumberGenerator()
        for attempt in 1...30 {
            let delay = policy.delay(afterAttempt: attempt, random: Double.random(in: 0..<1, using: &generator))
            #expect(delay >= .zero && delay <= .seconds(20))
        }
    }
}
