import Foundation
import ParticipantInput
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantTestSupport
import ParticipantWire
import Testing

/// Chats named by a participant token: the sender creates the connection, keeps it, renews it
/// before it expires, makes a new one once after a 403, and ends the chat when
/// CreateParticipantConnection refuses the participant.
extension EventSenderTests {
    @discardableResult
    func submitViaParticipant(
        _ outbox: Outbox, _ sender: EventSender, token: String, participant: String, type: EventContentType = .typing, connectParticipant: Bool? = nil
    ) async throws -> StoredEvent {
        let event = try EventValidator.validate(EventSubmission(
            contentType: type.rawValue, content: type.isReceipt ? receipt("m-\(token)") : nil, clientToken: token, connectionToken: nil,
            participantToken: participant, connectParticipant: connectParticipant
        ))
        guard case .created(let stored) = try await outbox.submit(event) else { throw TimedOut(description: "\(token) not created") }
        sender.wake()
        return stored
    }

    @Test("The first item creates the connection, later ones use it; it is renewed when a fifth of its life (at most a minute) is left")
    func connectionCreatedKeptAndRenewed() async throws {
        let clock = clock
        // Tokens that live 100 s: renewed once less than 20 s are left.
        service.answerConnections { token, _, index in .created(connectionToken: "ct-\(index)", expiry: clock.date.addingTimeInterval(100)) }
        try await withSender { outbox, sender, _ in
            try await submitViaParticipant(outbox, sender, token: "a", participant: "pt-1")
            try await eventually(timeout: .seconds(10), "a sent") { try await state(outbox, "a") == .sent }
            try await submitViaParticipant(outbox, sender, token: "b", participant: "pt-1")
            try await eventually(timeout: .seconds(10), "b sent") { try await state(outbox, "b") == .sent }
            #expect(service.connections.map(\.participantToken) == ["pt-1"])
            #expect(service.requests.map(\.connectionToken) == ["ct-0", "ct-0"])
            #expect(service.connections.first?.connectParticipant == true, "connections.connectParticipant's default")

            clock.advance(by: .seconds(79))  // 21 s left: still good
            try await submitViaParticipant(outbox, sender, token: "c", participant: "pt-1")
            try await eventually(timeout: .seconds(10), "c sent") { try await state(outbox, "c") == .sent }
            clock.advance(by: .seconds(2))   // 19 s left: renewed
            try await submitViaParticipant(outbox, sender, token: "d", participant: "pt-1")
            try await eventually(timeout: .seconds(10), "d sent") { try await state(outbox, "d") == .sent }
            #expect(service.connections.count == 2)
            #expect(service.requests.map(\.connectionToken) == ["ct-0", "ct-0", "ct-0", "ct-1"])
            // The participant token itself never reaches SendEvent.
            #expect(!service.requests.contains { $0.connectionToken == "pt-1" })
        }
    }

    @Test("A sender that starts just after a connection was created waits for CreateParticipantConnection's next token")
    func restartKeepsTheConnectionQuota() async throws {
        try await withSender({ $0.connectionQuota = QuotaPacer.Configuration(rate: 1, burst: 9) }, beforeStart: { outbox in
            // The previous run created pt-0's connection just now.
            let event = try EventValidator.validate(EventSubmission(
                contentType: EventContentType.typing.rawValue, content: nil, clientToken: "before", connectionToken: nil, participantToken: "pt-0"
            ))
            guard case .created(let stored) = try await outbox.submit(event) else { throw TimedOut(description: "before not created") }
            try await outbox.recordConnection(for: stored, connectionToken: "ct-kept", expiresAt: clock.date.addingTimeInterval(3_600), connected: true)
        }) { outbox, sender, _ in
            try await submitViaParticipant(outbox, sender, token: "a", participant: "pt-1")
            try await asleep(until: .seconds(1))
            #expect(service.connections.isEmpty, "no creation before the next token")
            clock.advance(by: .seconds(1))
            try await eventually(timeout: .seconds(10), "a sent") { try await state(outbox, "a") == .sent }
            #expect(service.connections.map(\.participantToken) == ["pt-1"])
        }
    }

    @Test("A 403 with a kept connection makes a new one, once; a 403 with the new one is final and ends the chat's waiting items")
    func newConnectionOnceAfterA403() async throws {
        let refused = Locked<Set<String>>([])
        service.answer { request, _ in
            refused.value.contains(request.connectionToken) || refused.value.contains("all")
                ? .rejected(ErrorBody(code: "AccessDeniedException", message: "no"), status: 403) : .accepted(request)
        }
        try await withSender { outbox, sender, _ in
            // pt-1: its kept token dies; a new one is made and works.
            try await submitViaParticipant(outbox, sender, token: "w0", participant: "pt-1", type: .messageRead)
            try await eventually(timeout: .seconds(10), "w0 sent") { try await state(outbox, "w0") == .sent }
            refused.withLock { _ = $0.insert("ct-pt-1-0") }
            try await submitViaParticipant(outbox, sender, token: "w1", participant: "pt-1", type: .messageRead)
            try await eventually(timeout: .seconds(10), "w1 sent") { try await state(outbox, "w1") == .sent }
            #expect(service.requests.map(\.connectionToken) == ["ct-pt-1-0", "ct-pt-1-0", "ct-pt-1-1"])

            // pt-2: its kept token dies, and so does the new one: the attempt with the new one ends the chat.
            try await submitViaParticipant(outbox, sender, token: "x0", participant: "pt-2", type: .messageRead)
            try await eventually(timeout: .seconds(10), "x0 sent") { try await state(outbox, "x0") == .sent }
            refused.withLock { _ = $0.insert("all") }
            try await submitViaParticipant(outbox, sender, token: "x1", participant: "pt-2", type: .messageRead)
            try await submitViaParticipant(outbox, sender, token: "x2", participant: "pt-2", type: .typing)
            try await eventually(timeout: .seconds(10), "x1 failed") { try await state(outbox, "x1") == .failed }
            #expect(try await state(outbox, "x2") == .failed, "the chat's waiting items fail with it")
            #expect(service.connections.filter { $0.participantToken == "pt-2" }.count == 2, "a new connection once, not more")
        }
    }

    @Test("CreateParticipantConnection's 403 ends the chat: its items fail without a SendEvent, and new ones are refused")
    func participantRefused() async throws {
        service.answerConnections { _, _, _ in .rejected(ErrorBody(code: "AccessDeniedException", message: "chat ended"), status: 403) }
        try await withSender { outbox, sender, _ in
            try await submitViaParticipant(outbox, sender, token: "a", participant: "gone", type: .messageRead)
            try await submitViaParticipant(outbox, sender, token: "b", participant: "gone", type: .typing)
            try await eventually(timeout: .seconds(10), "a failed") { try await state(outbox, "a") == .failed }
            #expect(try await state(outbox, "b") == .failed)
            #expect(service.requests.isEmpty)
            #expect(service.connections.count == 1)
            let record = try #require(try await outbox.event(clientToken: "a"))
            #expect(record.lastError?.message.contains("CreateParticipantConnection refused the participant token") == true)
            let again = try EventValidator.validate(EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: nil, participantToken: "gone"))
            guard case .blocked = try await outbox.submit(again) else { Issue.record("the chat is over"); return }
        }
    }

    @Test("CreateParticipantConnection failing (500) schedules retries, and health says so after three in a row; a success clears it")
    func creationFailuresInHealth() async throws {
        service.answerConnections { token, _, index in
            index < 3 ? .transient(ErrorBody(code: "InternalServerException", message: "boom"), status: 500)
                : .created(connectionToken: "ct-\(index)", expiry: Date(timeIntervalSince1970: 4_102_444_800))
        }
        try await withSender({ $0.retry = RetryPolicy(baseDelay: .seconds(1), maxDelay: .seconds(1)) }) { outbox, sender, _ in
            try await submitViaParticipant(outbox, sender, token: "a", participant: "pt", type: .messageRead)
            for calls in 1...3 {
                try await eventually(timeout: .seconds(10), "creation \(calls)") {
                    let current = try await state(outbox, "a")
                    return service.connections.count == calls && current == .queued
                }
                if calls == 3 {
                    #expect(sender.healthProblems.contains { $0.contains("CreateParticipantConnection has failed 3 times in a row") }, "\(sender.healthProblems)")
                }
                // The retry's wake-up registered (0.5 s: full jitter at 0.5 of 1 s), then time moves.
                try await eventually(timeout: .seconds(10), "the sender asleep until the retry") {
                    clock.wakeUps.contains { $0 > clock.elapsed && $0 <= clock.elapsed + .seconds(1) }
                }
                clock.advance(by: .seconds(1))
            }
            try await eventually(timeout: .seconds(10), "a sent") { try await state(outbox, "a") == .sent }
            #expect(sender.healthProblems.isEmpty)
        }
    }

    @Test("connection.acknowledged for a participant token becomes ConnectParticipant: true, and no SendEvent")
    func acknowledgedBecomesConnectParticipant() async throws {
        try await withSender { outbox, sender, _ in
            try await submitViaParticipant(outbox, sender, token: "typing", participant: "pt", type: .typing, connectParticipant: false)
            try await eventually(timeout: .seconds(10), "typing sent") { try await state(outbox, "typing") == .sent }
            try await submitViaParticipant(outbox, sender, token: "ack", participant: "pt", type: .connectionAcknowledged)
            try await eventually(timeout: .seconds(10), "ack done") { try await state(outbox, "ack") == .sent }
            #expect(service.connections.map(\.connectParticipant) == [false, true])
            #expect(service.requests.map(\.clientToken) == ["typing"])
        }
    }
}
