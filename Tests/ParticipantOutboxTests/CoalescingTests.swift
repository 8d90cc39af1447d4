import ParticipantInput
import Foundation
import Logging
@testable import ParticipantOutbox
import ParticipantWire
import ParticipantTestSupport
import Testing

@Suite struct CoalescingTests {
    let clock = ManualClock()

    /// The per-message rules and typing: the rules of one receipt over another are `ReceiptCoalescingTests`'.
    func withOutbox<T>(rules: CoalescingRules = .perMessage, _ body: (Outbox) async throws -> T) async throws -> T {
        try await withTestOutbox(clock: clock, coalescing: rules, body)
    }

    @Test("A typing event replaces the one still waiting for its connection")
    func typingReplacesWaiting() async throws {
        try await withOutbox { outbox in
            _ = try await submitEvent(outbox, .typing, "t1")
            _ = try await submitEvent(outbox, .typing, "t2", connection: "other")
            let t3 = try await submitEvent(outbox, .typing, "t3")
            #expect(t3.state == .queued)
            #expect(try await stateOf(outbox, "t1") == (.superseded, "t3"))
            #expect(try await stateOf(outbox, "t2") == (.queued, nil))
            #expect(outbox.waitingCount == 2)
            #expect(Set(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).map(\.clientToken)) == ["t2", "t3"])
        }
    }

    @Test("At most one typing event per connection per interval: a later one is superseded by the one sent")
    func typingInterval() async throws {
        try await withOutbox { outbox in
            _ = try await submitEvent(outbox, .typing, "t1")
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1)
            let during = try await submitEvent(outbox, .typing, "t2")  // t1 is in flight
            #expect(during.state == .superseded)
            #expect(during.supersededBy == "t1")
            try await outbox.record(.sent(id: "i", absoluteTime: "a"), for: leased[0])
            clock.advance(by: .seconds(9))
            #expect(try await submitEvent(outbox, .typing, "t3").supersededBy == "t1")
            clock.advance(by: .seconds(2))
            #expect(try await submitEvent(outbox, .typing, "t4").state == .queued)
            #expect(outbox.waitingCount == 1)
        }
    }

    @Test("Receipts: no duplicate, no delivered after read, and a read replaces a waiting delivered")
    func receipts() async throws {
        try await withOutbox { outbox in
            _ = try await submitEvent(outbox, .messageDelivered, "d1", message: "m1")
            let r1 = try await submitEvent(outbox, .messageRead, "r1", message: "m1")
            #expect(r1.state == .queued)
            #expect(try await stateOf(outbox, "d1") == (.superseded, "r1"))
            #expect(try await submitEvent(outbox, .messageDelivered, "d2", message: "m1").supersededBy == "r1")
            #expect(try await submitEvent(outbox, .messageRead, "r2", message: "m1").supersededBy == "r1")
            // Another message, or another connection, is another matter.
            #expect(try await submitEvent(outbox, .messageDelivered, "d3", message: "m2").state == .queued)
            #expect(try await submitEvent(outbox, .messageRead, "r3", message: "m1", connection: "other").state == .queued)
            #expect(outbox.waitingCount == 3)
        }
    }

    @Test("A receipt whose earlier twin failed is tried again")
    func failedReceiptDoesNotCoalesce() async throws {
        try await withOutbox { outbox in
            _ = try await submitEvent(outbox, .messageRead, "r1")
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1)
            try await outbox.record(.failed(ErrorBody(code: "InternalError", message: "x")), for: leased[0])
            #expect(try await submitEvent(outbox, .messageRead, "r2").state == .queued)
        }
    }

    @Test("Every rule can be switched off")
    func switchedOff() async throws {
        var rules = CoalescingRules()
        rules.typingInterval = .zero
        rules.receipts = false
        rules.newestReceiptOnly = false
        rules.deliveredHold = .zero
        try await withOutbox(rules: rules) { outbox in
            var states: [EventState] = []
            for token in ["t1", "t2"] { states.append(try await submitEvent(outbox, .typing, token).state) }
            for token in ["r1", "r2"] { states.append(try await submitEvent(outbox, .messageRead, token).state) }
            states.append(try await submitEvent(outbox, .messageDelivered, "d1").state)
            #expect(states == Array(repeating: .queued, count: 5))
        }
    }

}
