import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantWire
import ParticipantTestSupport
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
        // Two requests per second: the receipts, submitted last (in the same batch, so that a slow
        // machine cannot send the typing events before they arrive), wait while eight typing
        // events could not all have gone, so they must overtake the later ones. (The exact order
        // is tested without timing in OutboxTests.)
        try await TestDaemon.with(configure: { $0.sender.quota = .init(rate: 2, burst: 1) }) { daemon in
            let items = (0..<8).map { (EventContentType.typing, "typing-\($0)", "c\($0)") }
                + [(EventContentType.messageDelivered, "delivered", "d"), (EventContentType.messageRead, "read", "r")]
            let results = try await daemon.client.submitBatch(items.map { type, token, connection in
                EventSubmission(contentType: type.rawValue, content: type.sampleContent(token), clientToken: token, connectionToken: connection)
            }).results
            #expect(results.allSatisfy { $0.status == 202 })
            try await eventually(timeout: .seconds(30)) {
                Set(daemon.standIn.acceptedEvents.map(\.clientToken)).isSuperset(of: ["read", "delivered"])
            }
            let order = daemon.standIn.requests.compactMap(\.clientToken)
            #expect(!order.contains("typing-7"), "\(order)")
        }
    }

    @Test("429s from a service with less quota than configured slow the daemon down; every event still arrives")
    func slowsDownOnThrottling() async throws {
        try await TestDaemon.with(configure: { $0.sender.quota = .init(rate: 100, burst: 10) }) { daemon in
            daemon.standIn.setQuota(rate: 10, burst: 2)
            // All at once: submitted one after another on a loaded machine, they reached the
            // sender more than 100 ms apart, inside the stand-in's quota, and nothing was throttled.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<30 {
                    group.addTask { try await submit(daemon, .messageRead, token: "e\(index)", connection: "c\(index)") }
                }
                try await group.waitForAll()
            }
            try await eventually(timeout: .seconds(30)) { daemon.standIn.acceptedEvents.count == 30 }
            #expect(daemon.standIn.throttledCount > 0)
            #expect(daemon.logText.contains("quota.rate"))
            // Without slowing down, 30 events at 100/s against a 10/s service would draw far more 429s.
            #expect(daemon.standIn.throttledCount < 60, "\(daemon.standIn.throttledCount)")
        }
    }
}

/// Events that can never succeed, and the outbox's capacity, over the socket.
@Suite struct RefusalTests {
    @Test("After a 403 the connection's waiting events fail without requests and new ones get 410 ConnectionRejected")
    func deadToken() async throws {
        let dead = "dead-connection"
        // The 403 is held at the stand-in until all five are accepted, however slow the machine.
        let gate = ParticipantServiceStandIn.Gate()
        try await TestDaemon.with(behavior: { request in
            request.bearer == dead ? .wait(gate, then: .error(status: 403, code: "AccessDeniedException", message: "the chat has ended")) : .accept
        }, configure: { $0.requestTimeout = .seconds(30) }) { daemon in
            for index in 0..<5 {
                _ = try await daemon.client.submit(EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("m\(index)"), clientToken: "dead-\(index)", connectionToken: dead))
            }
            gate.open()
            try await eventually(timeout: .seconds(15)) { (try? await daemon.client.event(clientToken: "dead-4").state) == .failed }
            for index in 0..<5 {
                #expect(try await daemon.client.event(clientToken: "dead-\(index)").lastError?.code == "AccessDeniedException")
            }
            #expect(daemon.standIn.requests.filter { $0.bearer == dead }.count == 1)
            let error = await #expect(throws: DaemonClientError.self) {
                try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: dead))
            }
            guard case .api(410, let body) = error else { Issue.record("expected 410, got \(String(describing: error))"); return }
            #expect(body.code == "ConnectionRejected")
            #expect(body.message.contains("the chat has ended"))
            // Other connections are untouched.
            let other = try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: "alive"))
            #expect(try await daemon.waitForEvent(other.event.clientToken) { $0.state.isFinal }.state == .sent)
            #expect(daemon.logText.contains("Connection refused by the service"))
        }
    }

    @Test("After a 409 on a receipt, receipts of that connection get 409 ReceiptsRefused; typing still goes")
    func receiptsRefused() async throws {
        try await TestDaemon.with(behavior: { request in
            request.contentType == EventContentType.typing.rawValue ? .accept : .error(status: 409, code: "ConflictException", message: "receipts are off in this chat")
        }) { daemon in
            let first = try await daemon.client.submit(EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("m"), connectionToken: "c"))
            _ = try await daemon.waitForEvent(first.event.clientToken) { $0.state == .failed }
            let error = await #expect(throws: DaemonClientError.self) {
                try await daemon.client.submit(EventSubmission(contentType: EventContentType.messageDelivered.rawValue, content: receipt("n"), connectionToken: "c"))
            }
            guard case .api(409, let body) = error else { Issue.record("expected 409"); return }
            #expect(body.code == "ReceiptsRefused")
            let typing = try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: "c"))
            #expect(try await daemon.waitForEvent(typing.event.clientToken) { $0.state.isFinal }.state == .sent)
        }
    }

    @Test("A full outbox answers 503 OutboxFull with Retry-After")
    func outboxFull() async throws {
        // The service fails every attempt, so both events keep waiting and the outbox stays full
        // for as long as the test needs (with a slow success, one could be sent before the check).
        try await TestDaemon.with(behavior: { _ in .error(status: 500, code: "InternalServerException", message: "down") }, configure: { $0.limits.capacity = 2; $0.limits.peerShare = 1 }) { daemon in
            for index in 0..<2 {
                _ = try await daemon.client.submit(EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("\(index)"), connectionToken: "c\(index)"))
            }
            let body = #"{"contentType": "application/vnd.amazonaws.connect.event.typing", "connectionToken": "x"}"#
            let (status, headers, answer) = try await RawSocketClient(path: daemon.configuration.socketPath).requestWithHeaders(method: "POST", path: "/v1/events", body: body)
            #expect(status == 503)
            #expect(headers["retry-after"] == "5")
            #expect(try JSONDecoder().decode(ErrorBody.self, from: answer).code == "OutboxFull")

            // SendEvent's route says it as the service would: a throttle, which SDKs retry.
            let (awsStatus, awsHeaders, _) = try await RawSocketClient(path: daemon.configuration.socketPath).requestWithHeaders(
                method: "POST", path: "/participant/event",
                body: #"{"ContentType": "application/vnd.amazonaws.connect.event.typing"}"#, headers: [("X-Amz-Bearer", "x")]
            )
            #expect(awsStatus == 429)
            #expect(awsHeaders["x-amzn-errortype"] == "ThrottlingException")
            #expect(awsHeaders["retry-after"] == "5")
        }
    }
}

@Suite struct OutageTests {
    @Test("When the service is down the daemon stops retrying event by event, probes slowly, reports degraded, and resumes")
    func serviceDown() async throws {
        let down = Locked(true)
        try await TestDaemon.with(behavior: { _ in
            down.value ? .error(status: 503, code: "ServiceUnavailable", message: "down") : .accept
        }) { daemon in
            for index in 0..<10 {
                _ = try await daemon.client.submit(EventSubmission(
                    contentType: EventContentType.messageRead.rawValue, content: receipt("\(index)"), clientToken: "e\(index)", connectionToken: "c\(index)"
                ))
            }
            try await eventually(timeout: .seconds(15)) { (try? await daemon.client.health().status) == "degraded" }
            let health = try await daemon.client.health()
            #expect(health.problems.first?.contains("has not answered") == true)

            // Suspended: over two seconds at most a few probes, where per-event retries (10-50 ms
            // apart, ten events) would have made hundreds of requests.
            let before = daemon.standIn.requests.count
            try await Task.sleep(for: .seconds(2))
            #expect(daemon.standIn.requests.count - before <= 3)

            down.withLock { $0 = false }
            try await eventually(timeout: .seconds(20)) { daemon.standIn.acceptedEvents.count == 10 }
            #expect(try await daemon.client.health().status == "ok")
            #expect(daemon.logText.contains("sending suspended"))
            #expect(daemon.logText.contains("sending resumed"))
        }
    }
}
