import Foundation
import ParticipantInput
@testable import ParticipantOutbox
import ParticipantTestSupport
import ParticipantWire
import Testing

/// A chat's disconnect in the outbox: after everything before it, alone in its quota, the end of
/// the chat's typing and receipts, and of the chat.
@Suite struct DisconnectOutboxTests {
    let clock = ManualClock()

    func message(_ token: String, connection: String = "conn") -> ValidatedItem {
        .message(try! MessageValidator.validate(MessageSubmission(contentType: "text/plain", content: token, clientToken: token, connectionToken: connection)))
    }

    func event(_ type: EventContentType, _ token: String, connection: String = "conn") -> ValidatedItem {
        .event(try! EventValidator.validate(EventSubmission(
            contentType: type.rawValue, content: type.isReceipt ? receipt("m-\(token)") : nil, clientToken: token, connectionToken: connection
        )))
    }

    func disconnect(_ token: String, connection: String = "conn") -> ValidatedItem {
        .disconnect(try! DisconnectValidator.validate(DisconnectSubmission(clientToken: token, connectionToken: connection)))
    }

    func submit(_ outbox: Outbox, _ item: ValidatedItem) async throws -> SubmitOutcome {
        try await outbox.submit([item])[0].get()
    }

    /// Leases and sends everything it can, one quota at a time as the sender does; returns the
    /// tokens in the order they went.
    func drain(_ outbox: Outbox) async throws -> [String] {
        var sent: [String] = []
        while true {
            var leased: [StoredEvent] = []
            for kinds in [ItemKind.message.priorities.lowerBound...ItemKind.event.priorities.upperBound, ItemKind.disconnect.priorities] {
                leased += try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10, priorities: kinds)
            }
            if leased.isEmpty { return sent }
            for item in leased {
                sent.append(item.clientToken)
                try await outbox.record(.sent(id: item.contentType.kind == .disconnect ? "" : "id", absoluteTime: ""), for: item)
            }
        }
    }

    @Test("The disconnect goes after the chat's messages, its waiting typing and receipts end superseded, and the chat takes nothing more")
    func afterEverythingBefore() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            _ = try await submit(outbox, message("m1"))
            _ = try await submit(outbox, event(.typing, "typing"))
            _ = try await submit(outbox, event(.messageRead, "read"))
            _ = try await submit(outbox, message("m2"))
            guard case .created(let stored) = try await submit(outbox, disconnect("bye")) else { Issue.record("not created"); return }
            #expect(stored.record.kind == .disconnect)
            #expect(stored.contentType == .disconnect)
            for token in ["typing", "read"] {
                let ended = try await outbox.event(clientToken: token)
                #expect(ended?.state == .superseded && ended?.supersededBy == "bye", "\(token)")
            }
            #expect(outbox.savedRequests.byRule[.disconnected] == 2)

            #expect(try await drain(outbox) == ["m1", "m2", "bye"])
            let sent = try await outbox.event(clientToken: "bye")
            #expect(sent?.state == .sent && sent?.serviceId == nil && sent?.absoluteTime == nil)

            guard case .chatDisconnected(let by) = try await submit(outbox, message("late")) else { Issue.record("the chat must be closed"); return }
            #expect(by.clientToken == "bye")
            guard case .chatDisconnected = try await submit(outbox, disconnect("bye-again")) else { Issue.record("a second disconnect is refused"); return }
            guard case .duplicate = try await submit(outbox, disconnect("bye")) else { Issue.record("the same disconnect again is a duplicate"); return }
            guard case .created = try await submit(outbox, message("other chat", connection: "other")) else { Issue.record("other chats go on"); return }

            // Deleting the disconnect opens the chat again.
            _ = try await outbox.delete(clientToken: "bye")
            guard case .created = try await submit(outbox, message("reopened")) else { Issue.record("the chat opens again"); return }
        }
    }

    @Test("Each quota leases its own kinds: the main quota's lease passes a disconnect by, and a chat's disconnect holds up nothing else")
    func quotasLeaseTheirOwnKinds() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            _ = try await submit(outbox, disconnect("bye-a", connection: "a"))
            _ = try await submit(outbox, message("m-b", connection: "b"))
            let sends = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10, priorities: -1...3)
            #expect(sends.map(\.clientToken) == ["m-b"])
            #expect(try await outbox.queuedItems(instance: InstanceName.defaultName, priorities: ItemKind.disconnect.priorities) == (true, true))
            let disconnects = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10, priorities: ItemKind.disconnect.priorities)
            #expect(disconnects.map(\.clientToken) == ["bye-a"])
            #expect(try await outbox.queuedItems(instance: InstanceName.defaultName, priorities: ItemKind.disconnect.priorities) == (false, false))
        }
    }

    @Test("A message an operator holds keeps the disconnect behind it until it is released and sent")
    func heldItemHoldsTheDisconnect() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            _ = try await submit(outbox, message("m1"))
            _ = try await outbox.hold(clientToken: "m1")
            _ = try await submit(outbox, disconnect("bye"))
            #expect(try await drain(outbox) == [])
            _ = try await outbox.release(clientToken: "m1")
            #expect(try await drain(outbox) == ["m1", "bye"])
        }
    }

    @Test("A disconnect's ClientToken is in the one namespace: used again for a message it is a mismatch")
    func oneNamespace() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            _ = try await submit(outbox, disconnect("t", connection: "a"))
            guard case .mismatch = try await submit(outbox, message("t", connection: "b")) else { Issue.record("expected a mismatch"); return }
        }
    }
}
