import Foundation
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantWire
import ParticipantTestSupport
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
        try await withTestOutbox(clock: clock, storage: .temporaryFile, limits: limits) { outbox in
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

    @Test("An outcome signal is kept for a registered waiter, wakes one that waits, a wait ends at its timeout, and nothing stays registered")
    func outcomeSignals() async throws {
        // On a manual clock no timeout passes unless the test moves it: a wait that returns
        // before then was ended by its signal.
        let clock = ManualClock()
        let signals = OutcomeSignals(clock: clock)
        let early = signals.register("a")
        signals.notify("a")
        await signals.wait(early, timeout: .seconds(30))

        let late = signals.register("b")
        async let waited: Void = signals.wait(late, timeout: .seconds(30))
        try await eventually(timeout: .seconds(10), "the wait for b asleep") { clock.wakeUps == [.seconds(30)] }
        signals.notify("b")
        await waited
        #expect(clock.elapsed == .zero)

        let unsignalled = signals.register("c")
        async let timedOut: Void = signals.wait(unsignalled, timeout: .milliseconds(50))
        try await eventually(timeout: .seconds(10), "the wait for c asleep") { clock.wakeUps == [.milliseconds(50)] }
        clock.advance(by: .milliseconds(50))
        await timedOut
        #expect(signals.openRegistrations == 0)
    }
}
