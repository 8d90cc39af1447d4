import Foundation
import ParticipantCore
import ParticipantServiceStandIn
import ParticipantWire
import Testing

/// Quota pacing and priority, against a stand-in that enforces a quota as the service does.
@Suite struct PacingTests {
    func submit(_ daemon: TestDaemon, _ type: EventContentType, token: String, connection: String) async throws {
        _ = try await daemon.client.submit(
            EventSubmission(contentType: type.rawValue, content: type.sampleContent(token), clientToken: token, connectionToken: connection)
        )
    }

    @Test("Within the quota the daemon causes no 429s, however large the backlog")
    func noThrottlingAtTheQuota() async throws {
        try await TestDaemon.with(configure: { $0.sender.quota = .init(rate: 20, burst: 5) }) { daemon in
            // The service's bucket has the same rate. Its burst is 3 larger than the daemon's because
            // the service counts arrival times: requests leaving 50 ms apart can arrive closer
            // together (a new connection's set-up delays one, the next catches up).
            daemon.standIn.setQuota(rate: 20, burst: 8)
            for index in 0..<40 {
                try await submit(daemon, .messageDelivered, token: "e\(index)", connection: "c\(index)")
            }
            try await eventually(timeout: .seconds(15)) { daemon.standIn.acceptedEvents.count == 40 }
            #expect(daemon.standIn.throttledCount == 0)
            let times = daemon.standIn.requests.map(\.receivedAt)
            // 35 requests past the burst at 20 per second take at least 1.75 s.
            #expect(times.max()!.timeIntervalSince(times.min()!) > 1.6)
        }
    }

    @Test("When the quota is the bottleneck a read receipt overtakes waiting typing indicators")
    func receiptsGoFirst() async throws {
        // One request per second: all ten submissions (each waits for its fsync) are stored long
        // before the second token, so after the first typing event the outbox's priority decides.
        try await TestDaemon.with(configure: { $0.sender.quota = .init(rate: 1, burst: 1) }) { daemon in
            for index in 0..<8 {
                try await submit(daemon, .typing, token: "typing-\(index)", connection: "c\(index)")
            }
            try await submit(daemon, .messageDelivered, token: "delivered", connection: "d")
            try await submit(daemon, .messageRead, token: "read", connection: "r")
            try await eventually(timeout: .seconds(10)) { daemon.standIn.acceptedEvents.count >= 3 }
            let order = daemon.standIn.requests.compactMap(\.clientToken)
            #expect(Array(order.prefix(3)) == ["typing-0", "read", "delivered"], "\(order)")
        }
    }

    @Test("429s from a service with less quota than configured slow the daemon down; every event still arrives")
    func slowsDownOnThrottling() async throws {
        try await TestDaemon.with(configure: { $0.sender.quota = .init(rate: 100, burst: 10) }) { daemon in
            daemon.standIn.setQuota(rate: 10, burst: 2)
            for index in 0..<30 {
                try await submit(daemon, .messageRead, token: "e\(index)", connection: "c\(index)")
            }
            try await eventually(timeout: .seconds(30)) { daemon.standIn.acceptedEvents.count == 30 }
            #expect(daemon.standIn.throttledCount > 0)
            #expect(daemon.logText.contains("quota.rate"))
            // Without slowing down, 30 events at 100/s against a 10/s service would draw far more 429s.
            #expect(daemon.standIn.throttledCount < 60, "\(daemon.standIn.throttledCount)")
        }
    }
}
