import Foundation
import Logging
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantWire
import Testing
import ParticipantTestSupport

/// The waiting count (the capacity check's) equals the rows that wait, whatever happens: a random
/// mix of submissions (coalescing on), leases, outcomes (an outcome recorded twice too), holds,
/// releases, retries, deletes, expiries and restarts, checked against `count(*)` at every step.
@Suite struct WaitingCountTests {
    enum Operation: CaseIterable {
        case submit, lease, recordSent, recordRetry, recordFailed, recordBlock, recordAgain, hold, release, retry, delete, expire, restart
    }

    @Test("The waiting count equals count(*) of queued and sending rows after every operation", arguments: [1, 2, 3, 4, 5])
    func countStaysExact(seed: UInt64) async throws {
        var random = SeededGenerator(state: seed * 7_919)
        let clock = ManualClock()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var deadlines = EventDeadlines()
        deadlines.typing = .seconds(5)
        var leased: [StoredEvent] = []
        var recorded: [StoredEvent] = []
        var submitted = 0
        var outbox = try Outbox.open(path: directory.path + "/outbox.sqlite", deadlines: deadlines, clock: clock.wallClock, logger: Logger(label: "test"))
        var writer = Task { [outbox] in try await outbox.writer.run() }

        for step in 0..<400 {
            let operation = Operation.allCases.randomElement(using: &random)!
            let connection = "c\(Int.random(in: 0..<4, using: &random))"
            do {
                switch operation {
                case .submit:
                    submitted += 1
                    let type = [EventContentType.typing, .messageDelivered, .messageRead].randomElement(using: &random)!
                    let content = type.isReceipt ? receipt("m\(Int.random(in: 0..<3, using: &random))") : nil
                    _ = try await outbox.submit(try EventValidator.validate(EventSubmission(
                        contentType: type.rawValue, content: content, clientToken: "t\(submitted)", connectionToken: connection
                    )))
                case .lease:
                    leased += try await outbox.leaseDue(instance: InstanceName.defaultName, limit: Int.random(in: 1...3, using: &random))
                case .recordSent, .recordRetry, .recordFailed, .recordBlock:
                    guard !leased.isEmpty else { continue }
                    let event = leased.removeFirst()
                    let transition: DeliveryTransition = switch operation {
                    case .recordSent: .sent(id: "i", absoluteTime: "t")
                    case .recordRetry: .retry(at: clock.date.addingTimeInterval(1), error: ErrorBody(code: "E", message: "m"))
                    case .recordFailed: .failed(ErrorBody(code: "V", message: "m"))
                    default: .failed(ErrorBody(code: "AccessDeniedException", message: "m"), block: .all)
                    }
                    try await outbox.record(transition, for: event)
                    recorded.append(event)
                case .recordAgain:
                    // An outcome recorded a second time (an outbox that refused it once): no change.
                    guard let event = recorded.randomElement(using: &random) else { continue }
                    try await outbox.record(.expired(ErrorBody(code: "X", message: "m")), for: event)
                case .hold, .release, .retry, .delete:
                    guard submitted > 0 else { continue }
                    let token = "t\(Int.random(in: 1...submitted, using: &random))"
                    switch operation {
                    case .hold: _ = try await outbox.hold(clientToken: token)
                    case .release: _ = try await outbox.release(clientToken: token)
                    case .retry: _ = try await outbox.retry(clientToken: token)
                    default: _ = try await outbox.delete(clientToken: token)
                    }
                case .expire:
                    clock.advance(by: .milliseconds(Int.random(in: 0...4_000, using: &random)))
                    _ = try await outbox.expireOverdue(instance: InstanceName.defaultName)
                case .restart:
                    writer.cancel()
                    _ = try? await writer.value
                    outbox = try Outbox.open(path: directory.path + "/outbox.sqlite", deadlines: deadlines, clock: clock.wallClock, logger: Logger(label: "test"))
                    writer = Task { [outbox] in try await outbox.writer.run() }
                    leased = []
                }
            } catch is QueueCommandError {
                // A command refused for the event's state changes nothing.
            }
            let counts = try await outbox.countsByState()
            let rows = (counts[.queued] ?? 0) + (counts[.sending] ?? 0)
            #expect(outbox.waitingCount == rows, "step \(step), after \(operation)")
            if outbox.waitingCount != rows { break }
        }
        writer.cancel()
        _ = try? await writer.value
    }
}
