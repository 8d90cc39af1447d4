import Foundation
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import Testing

@Suite struct OutageDetectorTests {
    @Test("During an outage: one probe at a time, at doubling intervals counted from probes actually made")
    func probing() {
        let detector = OutageDetector()
        for _ in 0..<4 { #expect(detector.recordNoAnswer("ConnectionError", at: Date(), now: .seconds(0)) == nil) }
        #expect(detector.allowedAttempts(16, inFlight: 0, now: .seconds(0)) == 16)
        #expect(detector.recordNoAnswer("ConnectionError", at: Date(), now: .seconds(0)) != nil)

        #expect(detector.allowedAttempts(16, inFlight: 0, now: .milliseconds(500)) == 0)
        // Asking with nothing to send spends no probe: much later one is still allowed.
        #expect(detector.allowedAttempts(16, inFlight: 0, now: .seconds(1)) == 1)
        #expect(detector.allowedAttempts(16, inFlight: 0, now: .seconds(50)) == 1)
        detector.probeStarted(now: .seconds(50))
        #expect(detector.allowedAttempts(16, inFlight: 1, now: .seconds(60)) == 0)  // one at a time
        #expect(detector.allowedAttempts(16, inFlight: 0, now: .milliseconds(50900)) == 0)
        #expect(detector.allowedAttempts(16, inFlight: 0, now: .seconds(51)) == 1)
        detector.probeStarted(now: .seconds(51))
        #expect(detector.allowedAttempts(16, inFlight: 0, now: .milliseconds(52900)) == 0)  // then 2 s
        #expect(detector.allowedAttempts(16, inFlight: 0, now: .seconds(53)) == 1)

        #expect(detector.recordAnswer() != nil)
        #expect(detector.allowedAttempts(16, inFlight: 3, now: .seconds(53)) == 16)
    }
}
