import ParticipantOutbox
import Synchronization
import Testing

/// The sender's wait (``Doorbell``): a ring is never lost, and a ring that came before the wait
/// costs it no timer.
@Suite struct DoorbellTests {
    /// The continuous clock, counting the sleeps asked of it.
    final class CountingClock: Clock, Sendable {
        let base = ContinuousClock()
        let sleeps = Atomic<Int>(0)
        var now: ContinuousClock.Instant { base.now }
        var minimumResolution: Duration { base.minimumResolution }
        func sleep(until deadline: ContinuousClock.Instant, tolerance: Duration?) async throws {
            sleeps.add(1, ordering: .relaxed)
            try await base.sleep(until: deadline, tolerance: tolerance)
        }
    }

    @Test("A ring before the wait returns it at once, with no timer started; the next wait waits for the next ring or its timeout")
    func ringBeforeTheWait() async {
        let bell = Doorbell()
        let clock = CountingClock()
        bell.ring()
        let started = ContinuousClock.now
        await bell.wait(timeout: .seconds(60), on: clock)
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(clock.sleeps.load(ordering: .relaxed) == 0, "no timer for a ring already there")
        // The ring was taken: this wait ends at its timeout.
        await bell.wait(timeout: .milliseconds(20), on: clock)
        #expect(clock.sleeps.load(ordering: .relaxed) == 1)
    }

    @Test("A ring during the wait ends it before its timeout")
    func ringDuringTheWait() async {
        let bell = Doorbell()
        let clock = CountingClock()
        let started = ContinuousClock.now
        async let waited: Void = bell.wait(timeout: .seconds(60), on: clock)
        // Rung until the wait has taken it (a ring before the wait starts is kept for it too).
        let ringer = Task {
            while !Task.isCancelled {
                bell.ring()
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        await waited
        ringer.cancel()
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}
