import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import Testing

@Suite struct OutageDetectorTests {
    @Test("During an outage: one probe at a time, at doubling intervals counted from probes actually made")
    func probing() {
        let detector = OutageDetector()
        for _ in 0..<4 { #expect(detector.recordNoAnswer("ConnectionError", at: Date(), now: 0) == nil) }
        #expect(detector.allowedAttempts(16, inFlight: 0, now: 0) == 16)
        #expect(detector.recordNoAnswer("ConnectionError", at: Date(), now: 0) != nil)

        #expect(detector.allowedAttempts(16, inFlight: 0, now: 0.5) == 0)
        // Asking with nothing to send spends no probe: much later one is still allowed.
        #expect(detector.allowedAttempts(16, inFlight: 0, now: 1) == 1)
        #expect(detector.allowedAttempts(16, inFlight: 0, now: 50) == 1)
        detector.probeStarted(now: 50)
        #expect(detector.allowedAttempts(16, inFlight: 1, now: 60) == 0)  // one at a time
        #expect(detector.allowedAttempts(16, inFlight: 0, now: 50.9) == 0)
        #expect(detector.allowedAttempts(16, inFlight: 0, now: 51) == 1)
        detector.probeStarted(now: 51)
        #expect(detector.allowedAttempts(16, inFlight: 0, now: 52.9) == 0)  // then 2 s
        #expect(detector.allowedAttempts(16, inFlight: 0, now: 53) == 1)

        #expect(detector.recordAnswer() != nil)
        #expect(detector.allowedAttempts(16, inFlight: 3, now: 53) == 16)
    }
}
