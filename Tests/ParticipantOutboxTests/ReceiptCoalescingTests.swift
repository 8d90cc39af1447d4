import Foundation
import ParticipantTestSupport
import Testing
@testable import ParticipantInput
@testable import ParticipantOutbox
import ParticipantWire

/// Spending the quota as the official chat client does: the newest receipt only, delivered receipts
/// held a moment, the typing interval from the request's start, and fair share between connections.
@Suite struct ReceiptCoalescingTests {
    let clock = ManualClock()

    func withOutbox<T>(rules: CoalescingRules = CoalescingRules(), _ body: (Outbox) async throws -> T) async throws -> T {
        try await withTestOutbox(clock: clock, coalescing: rules, body)
    }

    @Test("A newer receipt replaces its connection's older waiting ones: a read replaces reads and delivered receipts, a delivered only delivered ones; in flight is not recalled; other connections keep theirs")
    func newestReceiptOnly() async throws {
        try await withOutbox { outbox in
            try await submitEvent(outbox, .messageRead, "r1", message: "m1")
            clock.advance(by: .seconds(1))
            let inFlight = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10)
            #expect(inFlight.map(\.clientToken) == ["r1"])
            try await submitEvent(outbox, .messageRead, "r2", message: "m2")
            try await submitEvent(outbox, .messageDelivered, "d3", message: "m3")
            try await submitEvent(outbox, .messageDelivered, "d4", message: "m4")
            try await submitEvent(outbox, .messageRead, "other", message: "m1", connection: "other")
            #expect(try await stateOf(outbox, "r1") == (.sending, nil), "in flight: not recalled")
            #expect(try await stateOf(outbox, "r2") == (.queued, nil), "a delivered does not replace a read")
            #expect(try await stateOf(outbox, "d3") == (.superseded, "d4"))
            #expect(try await stateOf(outbox, "d4") == (.queued, nil))
            try await submitEvent(outbox, .messageRead, "r5", message: "m5")
            #expect(try await stateOf(outbox, "r2") == (.superseded, "r5"))
            #expect(try await stateOf(outbox, "d4") == (.superseded, "r5"))
            #expect(try await stateOf(outbox, "other") == (.queued, nil))
            #expect(outbox.savedRequests.byRule[.newestReceiptOnly] == 3)
            #expect(outbox.waitingCount == 3, "r1 in flight, r5, other")
        }
    }

    @Test("Switched off, every receipt of a connection waits to be sent")
    func newestReceiptOnlyOff() async throws {
        var rules = CoalescingRules()
        rules.newestReceiptOnly = false
        try await withOutbox(rules: rules) { outbox in
            try await submitEvent(outbox, .messageRead, "r1", message: "m1")
            try await submitEvent(outbox, .messageRead, "r2", message: "m2")
            #expect(try await stateOf(outbox, "r1") == (.queued, nil))
            #expect(outbox.savedRequests.byRule[.newestReceiptOnly] == 0)
        }
    }

    @Test("A receipt redundant on arrival names the earliest live receipt that says it, and counts under its rule: the same receipt again, or a delivered after its read")
    func redundantReceiptRule() async throws {
        try await withOutbox(rules: CoalescingRules.perMessage) { outbox in
            try await submitEvent(outbox, .messageDelivered, "d1", message: "m1")
            try await submitEvent(outbox, .messageDelivered, "d1-again", message: "m1")
            #expect(try await stateOf(outbox, "d1-again") == (.superseded, "d1"))
            #expect(outbox.savedRequests.byRule[.duplicateReceipt] == 1)
            #expect(outbox.savedRequests.byRule[.deliveredAfterRead] == 0)

            try await submitEvent(outbox, .messageRead, "r2", message: "m2")
            try await submitEvent(outbox, .messageDelivered, "d2", message: "m2")
            #expect(try await stateOf(outbox, "d2") == (.superseded, "r2"))
            try await submitEvent(outbox, .messageRead, "r2-again", message: "m2")
            #expect(try await stateOf(outbox, "r2-again") == (.superseded, "r2"))
            #expect(outbox.savedRequests.byRule[.deliveredAfterRead] == 1)
            #expect(outbox.savedRequests.byRule[.duplicateReceipt] == 2)
        }
    }

    @Test("A delivered receipt is due deliveredHoldMilliseconds after it is accepted, so the read that follows at once replaces it")
    func deliveredHold() async throws {
        try await withOutbox { outbox in
            let delivered = try await submitEvent(outbox, .messageDelivered, "d1", message: "m1")
            #expect(delivered.nextAttemptAt == clock.date.addingTimeInterval(0.3))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).isEmpty, "held")
            #expect(try await outbox.nextWakeUp(after: clock.date, instance: InstanceName.defaultName) == clock.date.addingTimeInterval(0.3))
            clock.advance(by: .milliseconds(299))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).isEmpty)
            clock.advance(by: .milliseconds(1))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).map(\.clientToken) == ["d1"])

            try await submitEvent(outbox, .messageDelivered, "d2", message: "m2", connection: "c2")
            clock.advance(by: .milliseconds(100))
            try await submitEvent(outbox, .messageRead, "r2", message: "m2", connection: "c2")
            #expect(try await stateOf(outbox, "d2") == (.superseded, "r2"))
            #expect(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 10).map(\.clientToken) == ["r2"], "a read is not held")
            #expect(outbox.savedRequests.byRule[.deliveredAfterRead] == 1)
        }
    }

    @Test("The typing interval counts from the sent event's request start (switched off: from its answer)", arguments: [true, false])
    func typingFromRequestStart(_ fromRequestStart: Bool) async throws {
        var rules = CoalescingRules()
        rules.typingFromRequestStart = fromRequestStart
        try await withOutbox(rules: rules) { outbox in
            try await submitEvent(outbox, .typing, "t1")
            let leased = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).first)
            clock.advance(by: .seconds(4))  // a slow answer
            try await outbox.record(.sent(id: "i", absoluteTime: "t"), for: leased)
            clock.advance(by: .milliseconds(6500))  // 10.5 s after the request started, 6.5 s after the answer
            let next = try await submitEvent(outbox, .typing, "t2")
            if fromRequestStart {
                #expect(next.state == .queued)
            } else {
                #expect(next.state == .superseded && next.supersededBy == "t1")
                #expect(outbox.savedRequests.byRule[.typingInterval] == 1)
            }
        }
    }

    @Test("When the quota binds, a chat's backlog cannot hold up fifty others: the connection served least recently goes first (switched off: the oldest event first)", arguments: [true, false])
    func fairShare(_ fair: Bool) async throws {
        var rules = CoalescingRules.perMessage  // a backlog of receipts on one connection
        rules.fairShare = fair
        try await withOutbox(rules: rules) { outbox in
            for index in 0..<500 {
                try await submitEvent(outbox, .messageRead, "busy-\(index)", message: "b\(index)", connection: "busy")
            }
            clock.advance(by: .milliseconds(1))
            for index in 0..<50 {
                try await submitEvent(outbox, .messageRead, "chat-\(index)", message: "m", connection: "chat-\(index)")
            }
            // One token at a time, as when the quota binds; each request answered before the next.
            var order: [String] = []
            for _ in 0..<60 {
                clock.advance(by: .milliseconds(100))
                let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1)
                for event in leased {
                    order.append(event.clientToken)
                    try await outbox.record(.sent(id: "i", absoluteTime: "t"), for: event)
                }
            }
            let chatsServed = order.prefix(52).filter { $0.hasPrefix("chat-") }.count
            if fair {
                #expect(chatsServed == 50, "\(order.prefix(52))")
            } else {
                #expect(chatsServed == 0, "the busy chat's 500 go first")
            }
        }
    }

}
