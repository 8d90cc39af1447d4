import Logging
import ParticipantInput
import ParticipantWire
import Testing
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox

/// Opens an outbox in a temporary folder with `clock`, runs its writer, and closes both after `body`.
func withTestOutbox<T>(
    clock: ManualClock,
    directory: TemporaryDirectory? = nil,
    limits: OutboxLimits = OutboxLimits(),
    coalescing: CoalescingRules = .perMessage,
    _ body: (Outbox) async throws -> T
) async throws -> T {
    let temporary = try directory == nil ? TemporaryDirectory() : nil
    defer { temporary?.remove() }
    let path = (directory ?? temporary!).path + "/outbox.sqlite"
    let outbox = try Outbox.open(path: path, limits: limits, coalescing: coalescing, clock: clock.wallClock, logger: Logger(label: "test"))
    let writer = Task { try await outbox.writer.run() }
    do {
        let result = try await body(outbox)
        writer.cancel()
        _ = try? await writer.value
        return result
    } catch {
        writer.cancel()
        _ = try? await writer.value
        throw error
    }
}

extension CoalescingRules {
    /// The rules per message and typing interval only: no newest-receipt rule, no hold of delivered
    /// receipts. For tests of other things (order, leases, bounds) that send several receipts on one
    /// connection and expect each to be sent; the rules of one receipt over another are tested on
    /// their own (`ReceiptCoalescingTests`).
    static var perMessage: CoalescingRules {
        var rules = CoalescingRules()
        rules.newestReceiptOnly = false
        rules.deliveredHold = .zero
        return rules
    }
}

/// Validates and stores an event (a receipt gets content for `message`); fails unless it is new.
@discardableResult
func submitEvent(
    _ outbox: Outbox, _ type: EventContentType, _ token: String, message: String = "m", connection: String = "c"
) async throws -> StoredEvent {
    let event = try EventValidator.validate(EventSubmission(
        contentType: type.rawValue, content: type.isReceipt ? receipt(message) : nil, clientToken: token, connectionToken: connection
    ))
    guard case .created(let stored) = try await outbox.submit(event) else { throw TimedOut(description: "\(token) not created") }
    return stored
}

/// An event's state and what superseded it.
func stateOf(_ outbox: Outbox, _ token: String) async throws -> (EventState, String?) {
    let event = try #require(try await outbox.event(clientToken: token))
    return (event.state, event.supersededBy)
}
