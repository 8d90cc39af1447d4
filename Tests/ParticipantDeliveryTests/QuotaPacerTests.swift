@testable import ParticipantDelivery
@testable import ParticipantOutbox
import Testing

@Suite struct QuotaPacerTests {
    @Test func burstThenSteadyRate() {
        let pacer = QuotaPacer(configuration: .init(rate: 10, burst: 15), now: .seconds(0))
        #expect(pacer.take(upTo: 100, now: .seconds(0)) == 15)
        #expect(pacer.take(upTo: 1, now: .seconds(0)) == 0)
        #expect(pacer.untilNextToken(now: .zero) == .milliseconds(100))
        #expect(pacer.take(upTo: 100, now: .seconds(1)) == 10)
        // Never more than the burst, however long it was idle.
        #expect(pacer.take(upTo: 100, now: .seconds(1000)) == 15)
    }

    @Test("Over any window the requests stay within rate x time + burst")
    func neverExceedsTheQuota() {
        let pacer = QuotaPacer(configuration: .init(rate: 10, burst: 15), now: .seconds(0))
        var taken = 0
        for step in 0...1_000 {  // 10 s in 10 ms steps, always asking for more than there is
            taken += pacer.take(upTo: 7, now: .milliseconds(10) * step)
        }
        #expect(taken <= 10 * 10 + 15)
        #expect(taken >= 10 * 10 + 15 - 1)
    }

    @Test func throttleSlowsDownAndSuccessRecovers() {
        let pacer = QuotaPacer(configuration: .init(rate: 10, burst: 15, minimumRate: 0.5), now: .seconds(0))
        pacer.recordThrottle()
        #expect(abs(pacer.currentRate - 7) < 1e-9)
        #expect(pacer.take(upTo: 100, now: .seconds(0)) == 1)
        for _ in 0..<20 { pacer.recordThrottle() }
        #expect(pacer.currentRate == 0.5)
        for _ in 0..<100 { pacer.recordSuccess() }
        #expect(pacer.currentRate == 10)
    }

    @Test("A start keeps no more than the service's bucket has refilled since the previous run's last request")
    func resumeAfterARestart() {
        let configuration = QuotaPacer.Configuration(rate: 10, burst: 15)
        let justNow = QuotaPacer(configuration: configuration, now: .seconds(0))
        justNow.resume(lastRequestSecondsAgo: 0.01, now: .seconds(0))
        #expect(justNow.take(upTo: 100, now: .seconds(0)) == 0)
        #expect(justNow.untilNextToken(now: .seconds(0)) == .milliseconds(90))
        #expect(justNow.take(upTo: 100, now: .seconds(1)) == 10, "then the rate")

        let halfASecond = QuotaPacer(configuration: configuration, now: .seconds(0))
        halfASecond.resume(lastRequestSecondsAgo: 0.5, now: .seconds(0))
        #expect(halfASecond.take(upTo: 100, now: .seconds(0)) == 5)

        let longAgo = QuotaPacer(configuration: configuration, now: .seconds(0))
        longAgo.resume(lastRequestSecondsAgo: 3_600, now: .seconds(0))
        #expect(longAgo.take(upTo: 100, now: .seconds(0)) == 15, "a full bucket after a long stop")

        let clockWentBack = QuotaPacer(configuration: configuration, now: .seconds(0))
        clockWentBack.resume(lastRequestSecondsAgo: -30, now: .seconds(0))
        #expect(clockWentBack.take(upTo: 100, now: .seconds(0)) == 0)
    }

    @Test func givenBackTokensCanBeTakenAgain() {
        let pacer = QuotaPacer(configuration: .init(rate: 1, burst: 2), now: .seconds(0))
        #expect(pacer.take(upTo: 2, now: .seconds(0)) == 2)
        pacer.giveBack(1)
        #expect(pacer.take(upTo: 2, now: .seconds(0)) == 1)
    }

    @Test func disabledPacerTakesEverything() {
        let pacer = QuotaPacer(configuration: .init(rate: 0, burst: 0), now: .seconds(0))
        #expect(pacer.take(upTo: 1_000, now: .seconds(0)) == 1_000)
        #expect(pacer.untilNextToken(now: .zero) == .zero)
    }
}

