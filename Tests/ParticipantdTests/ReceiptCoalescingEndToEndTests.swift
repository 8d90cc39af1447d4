import Foundation
import ParticipantTestSupport
import Testing
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantInput
@testable import ParticipantOutbox
import ParticipantWire
/// Receipt coalescing seen from outside: over the socket, stats and metrics.
@Suite struct ReceiptCoalescingEndToEndTests {
    @Test("Over the socket: a chat that reads ten messages at once costs one request; stats and metrics count what each rule saved")
    func endToEnd() async throws {
        try await TestDaemon.with(configure: { configuration in
            configuration.coalescing = CoalescingRules()
            configuration.metricsListen = nil
        }) { daemon in
            // A client that received ten messages and read them at once: one batch, so that no
            // receipt can leave before the others arrive (the unit tests cover one in flight).
            var submissions: [EventSubmission] = []
            for index in 0..<10 {
                submissions.append(EventSubmission(
                    contentType: EventContentType.messageDelivered.rawValue, content: receipt("m\(index)"), clientToken: "d\(index)", connectionToken: "chat"
                ))
                submissions.append(EventSubmission(
                    contentType: EventContentType.messageRead.rawValue, content: receipt("m\(index)"), clientToken: "r\(index)", connectionToken: "chat"
                ))
            }
            #expect(try await daemon.client.submitBatch(submissions).results.allSatisfy { $0.status == 202 })
            _ = try await daemon.waitForEvent("r9") { $0.state == .sent }
            let sent = daemon.standIn.acceptedEvents.map(\.clientToken)
            #expect(sent == ["r9"])
            let stats = try await daemon.client.stats()
            let saved = try #require(stats.savedRequests)
            #expect(saved["deliveredAfterRead"]! + saved["newestReceiptOnly"]! == 20 - sent.count, "\(saved)")
            let (_, body) = try await RawSocketClient(path: daemon.configuration.socketPath).request(method: "GET", path: "/metrics")
            let samples = try PrometheusText.parse(String(decoding: body, as: UTF8.self))
            #expect(samples["participantd_requests_saved_total", ["rule": "newestReceiptOnly"]] == Double(saved["newestReceiptOnly"]!))
        }
    }
}
