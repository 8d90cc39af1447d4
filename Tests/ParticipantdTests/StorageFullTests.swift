import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantWire
import Testing

/// A full disk (simulated with SQLite's `max_page_count`, which fails writes exactly as a full
/// disk does, with SQLITE_FULL): nothing is acknowledged that was not stored, and writes work
/// again once space returns.
@Suite struct StorageFullTests {
    let clock = ManualClock()

    func event(_ index: Int) -> ValidatedEvent {
        // Large events fill a small database quickly.
        try! EventValidator.validate(EventSubmission(
            contentType: EventContentType.messageRead.rawValue,
            content: #"{"messageId": "\#(index)", "pad": "\#(String(repeating: "x", count: 12_000))"}"#,
            clientToken: "full-\(index)", connectionToken: "conn-\(index)"
        ))
    }

    @Test("The outbox refuses writes with storageFull when full, keeps every acknowledged event, and recovers when space returns")
    func outboxRecovers() async throws {
        var limits = OutboxLimits()
        limits.maxDatabaseMegabytes = 1
        limits.retention = .seconds(1)
        try await withTestOutbox(clock: clock, limits: limits) { outbox in
            var stored: [String] = []
            var refusal: OutboxError?
            for index in 0..<500 {
                do {
                    guard case .created(let event) = try await outbox.submit(event(index)) else { Issue.record("not created"); return }
                    stored.append(event.clientToken)
                } catch let error as OutboxError {
                    refusal = error
                    break
                }
            }
            guard case .storageFull? = refusal else { Issue.record("expected storageFull, got \(String(describing: refusal))"); return }
            #expect(stored.count > 10)
            #expect(outbox.storageProblem != nil)
            // Every acknowledged event is there; the refused one is not.
            for token in stored {
                #expect(try await outbox.event(clientToken: token) != nil)
            }
            #expect(try await outbox.event(clientToken: "full-\(stored.count)") == nil)
            #expect(outbox.waitingCount == stored.count)

            // Space returns: the events are sent and, past retention, deleted.
            var leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1_000)
            while !leased.isEmpty {
                for event in leased {
                    try await outbox.record(.sent(id: "id-\(event.clientToken)", absoluteTime: "2026-11-21T00:00:00.000Z"), for: event)
                }
                leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1_000)
            }
            clock.advance(by: .seconds(10))
            _ = try await outbox.deleteExpiredHistory(limit: 10_000)

            guard case .created = try await outbox.submit(event(10_000)) else { Issue.record("not stored after space returned"); return }
            #expect(outbox.storageProblem == nil)
        }
    }

    @Test("Over the socket: 507 StorageFull (Retry-After), health degraded, every 202 stored and sent, none of the refused")
    func daemonAnswers507() async throws {
        try await TestDaemon.with(configure: { $0.limits.maxDatabaseMegabytes = 1 }) { daemon in
            let client = RawSocketClient(path: daemon.configuration.socketPath)
            var acknowledged: [String] = []
            var refused: [String] = []
            for index in 0..<400 where refused.count < 3 {
                let token = "socket-full-\(index)"
                let body = try String(decoding: JSONEncoder().encode(EventSubmission(
                    contentType: EventContentType.messageRead.rawValue,
                    content: #"{"messageId": "\#(index)", "pad": "\#(String(repeating: "x", count: 12_000))"}"#,
                    clientToken: token, connectionToken: "conn-\(index)"
                )), as: UTF8.self)
                let (status, headers, answer) = try await client.requestWithHeaders(method: "POST", path: "/v1/events", body: body)
                switch status {
                case 202: acknowledged.append(token)
                case 507:
                    refused.append(token)
                    #expect(try JSONDecoder().decode(ErrorBody.self, from: answer).code == "StorageFull")
                    #expect(headers["retry-after"] != nil)
                default: Issue.record("unexpected \(status): \(String(decoding: answer, as: UTF8.self))")
                }
            }
            #expect(refused.count == 3)
            #expect(acknowledged.count > 10)
            let health = try await daemon.client.health()
            #expect(health.status == "degraded")
            #expect(health.problems.contains { $0.contains("storage is full") })

            for token in refused {
                await #expect(throws: DaemonClientError.self) { try await daemon.client.event(clientToken: token) }
            }
            for token in acknowledged {
                #expect(try await daemon.client.event(clientToken: token).clientToken == token)
            }
            // The room kept back lets the sender record outcomes: delivery goes on.
            try await eventually(timeout: .seconds(60), "every acknowledged event sent") {
                Set(daemon.standIn.acceptedEvents.map(\.clientToken)).isSuperset(of: acknowledged)
            }
            #expect(daemon.standIn.invalidRequestCount == 0)
        }
    }

    @Test("An outcome signal is kept for a registered waiter, a wait ends at its timeout, and nothing stays registered")
    func outcomeSignals() async {
        let signals = OutcomeSignals()
        let early = signals.register("a")
        signals.notify("a")
        let clock = ContinuousClock()
        let start = clock.now
        await signals.wait(early, timeout: .seconds(30))
        #expect(clock.now - start < .seconds(5))

        let late = signals.register("b")
        async let waited: Void = signals.wait(late, timeout: .seconds(30))
        try? await Task.sleep(for: .milliseconds(50))
        signals.notify("b")
        await waited

        let unsignalled = signals.register("c")
        let timeoutStart = clock.now
        await signals.wait(unsignalled, timeout: .milliseconds(50))
        #expect(clock.now - timeoutStart >= .milliseconds(50))
        #expect(signals.openRegistrations == 0)
    }
}
