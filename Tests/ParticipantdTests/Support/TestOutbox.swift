import Logging
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
    coalescing: CoalescingRules = CoalescingRules(),
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
