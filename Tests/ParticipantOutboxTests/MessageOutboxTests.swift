import Foundation
import ParticipantInput
@testable import ParticipantOutbox
import ParticipantTestSupport
import ParticipantWire
import Testing

/// Messages in the outbox: stored beside events, deduplicated in one ClientToken namespace, in
/// their chat's order, never coalesced, first when the quota binds.
@Suite struct MessageOutboxTests {
    let clock = ManualClock()

    func withOutbox<T>(deadlines: EventDeadlines = EventDeadlines(), _ body: (Outbox) async throws -> T) async throws -> T {
        try await withTestOutbox(clock: clock, deadlines: deadlines, body)
    }

    func message(_ token: String?, _ text: String = "hello", type: MessageContentType = .plainText, connection: String = "conn") -> ValidatedMessage {
        try! MessageValidator.validate(MessageSubmission(contentType: type.rawValue, content: text, clientToken: token, connectionToken: connection))
    }

    func event(_ type: EventContentType, _ token: String, connection: String = "conn", messageId: String = "m") -> ValidatedEvent {
        try! EventValidator.validate(EventSubmission(
            contentType: type.rawValue, content: type.isReceipt ? receipt(messageId) : nil, clientToken: token, connectionToken: connection
        ))
    }

    func lease(_ outbox: Outbox, limit: Int = 10) async throws -> [String] {
        try await outbox.leaseDue(instance: InstanceName.defaultName, limit: limit).map(\.clientToken)
    }

    @Test("A message is stored as its kind, with the messages' deadline, and answered again by its ClientToken")
    func storedAndDeduplicated() async throws {
        try await withOutbox { outbox in
            guard case .created(let stored) = try await outbox.submit(message("m1", type: .markdown)) else { Issue.record("not created"); return }
            #expect(stored.contentType == .message(.markdown))
            #expect(stored.record.kind == .message)
            #expect(stored.deadline == clock.date.addingTimeInterval(86_400))
            #expect(try await outbox.submit(message("m1", type: .markdown)) == .duplicate(stored))
            #expect(try await outbox.event(clientToken: "m1") == stored)
            guard case .mismatch = try await outbox.submit(message("m1", "other text", type: .markdown)) else { Issue.record("expected a mismatch"); return }
            guard case .mismatch = try await outbox.submit(message("m1", type: .plainText)) else { Issue.record("expected a mismatch"); return }
        }
    }

    @Test("One ClientToken namespace for every kind: a token stored for an event is a mismatch for a message, and the other way round")
    func oneNamespace() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(event(.typing, "shared"))
            guard case .mismatch(let existing) = try await outbox.submit(message("shared")) else { Issue.record("expected a mismatch"); return }
            #expect(existing.contentType == .event(.typing))
            _ = try await outbox.submit(message("said"))
            guard case .mismatch = try await outbox.submit(event(.typing, "said")) else { Issue.record("expected a mismatch"); return }
            #expect(try await outbox.countsByState()[.queued] == 2)
        }
    }

    @Test("Messages are never coalesced: the same text twice under two tokens is sent twice, and typing before a message stays")
    func neverCoalesced() async throws {
        try await withTestOutbox(clock: clock, coalescing: .perMessage) { outbox in
            _ = try await outbox.submit(event(.typing, "typing"))
            _ = try await outbox.submit(message("a", "same"))
            _ = try await outbox.submit(message("b", "same"))
            #expect(try await outbox.countsByState()[.queued] == 3)
            #expect(try await outbox.event(clientToken: "typing")?.state == .queued)
        }
    }

    @Test("In a chat, messages and events leave in the order they were accepted, one at a time")
    func orderPerChat() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(message("1"))
            _ = try await outbox.submit(event(.messageRead, "2"))
            _ = try await outbox.submit(message("3"))
            var sent: [String] = []
            while true {
                let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10)
                if leased.isEmpty { break }
                #expect(leased.count == 1, "one item of a chat in flight at a time")
                for item in leased {
                    sent.append(item.clientToken)
                    try await outbox.record(.sent(id: "id-\(item.clientToken)", absoluteTime: "t", processingStatus: item.contentType.kind == .message ? "PROCESSING" : nil), for: item)
                }
            }
            #expect(sent == ["1", "2", "3"])
            #expect(try await outbox.event(clientToken: "1")?.record.processingStatus == "PROCESSING")
            #expect(try await outbox.event(clientToken: "2")?.record.processingStatus == nil)
        }
    }

    @Test("When the quota binds, a chat's message goes before other chats' receipts and typing accepted earlier")
    func messagesFirst() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(event(.messageRead, "read", connection: "a"))
            _ = try await outbox.submit(event(.typing, "typing", connection: "b"))
            _ = try await outbox.submit(message("message", connection: "c"))
            #expect(try await lease(outbox, limit: 1) == ["message"])
            #expect(try await lease(outbox, limit: 1) == ["read"])
            #expect(try await lease(outbox, limit: 1) == ["typing"])
        }
    }

    @Test("A connection refused for good (403) refuses messages; one whose receipts were refused (409) still takes them")
    func blocks() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(event(.messageRead, "r", connection: "receipts-refused"))
            let receipt = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).first)
            try await outbox.record(.failed(ErrorBody(code: "ConflictException", message: "no receipts"), block: .receipts), for: receipt)
            guard case .created = try await outbox.submit(message("m1", connection: "receipts-refused")) else { Issue.record("a message is no receipt"); return }

            _ = try await outbox.submit(message("m2", connection: "ended"))
            _ = try await outbox.submit(message("m3", connection: "ended"))
            let first = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).first { $0.clientToken == "m2" })
            #expect(try await outbox.record(.failed(ErrorBody(code: "AccessDeniedException", message: "expired"), block: .all), for: first) == 1)
            #expect(try await outbox.event(clientToken: "m3")?.state == .failed)
            guard case .blocked(let block) = try await outbox.submit(message("m4", connection: "ended")) else { Issue.record("not blocked"); return }
            #expect(block.scope == .all)
        }
    }

    @Test("A message's deadline is deadlines.message, its own")
    func ownDeadline() async throws {
        var deadlines = EventDeadlines()
        deadlines.message = .seconds(600)
        try await withOutbox(deadlines: deadlines) { outbox in
            guard case .created(let stored) = try await outbox.submit(message("m")) else { Issue.record("not created"); return }
            #expect(stored.deadline == clock.date.addingTimeInterval(600))
            guard case .created(let typing) = try await outbox.submit(event(.typing, "t")) else { Issue.record("not created"); return }
            #expect(typing.deadline == clock.date.addingTimeInterval(10))
        }
    }
}
