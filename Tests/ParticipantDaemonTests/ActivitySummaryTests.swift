import InMemoryLogging
import Logging
@testable import ParticipantDaemon
import ParticipantOutbox
import ParticipantTestSupport
import ServiceLifecycleTestKit
import Testing

/// The `info` line that sums up what each item's `debug` lines say (`log.summarySeconds`).
@Suite struct ActivitySummaryTests {
    @Test("The line names what happened, and nothing happened is no line")
    func line() throws {
        #expect(ActivitySummary.line(Activity(), waiting: 12, seconds: 60) == nil)
        let quiet = try #require(ActivitySummary.line(Activity(accepted: 1200, sent: 1195), waiting: 5, seconds: 60))
        #expect(quiet.message == "Activity: 1200 accepted, 1195 sent in the last 60 s; 5 waiting")
        #expect(quiet.metadata["summary.accepted"] == "1200" && quiet.metadata["summary.sent"] == "1195")
        #expect(quiet.metadata["summary.failed"] == "0" && quiet.metadata["summary.expired"] == "0")
        #expect(quiet.metadata["outbox.waiting"] == "5" && quiet.metadata["summary.seconds"] == "60")
        let troubled = try #require(ActivitySummary.line(Activity(sent: 3, failed: 2, expired: 1), waiting: 0, seconds: 30))
        #expect(troubled.message == "Activity: 0 accepted, 3 sent, 2 failed, 1 expired in the last 30 s; 0 waiting")
        #expect(JournalCatalog.messageID(for: "\(quiet.message)") == JournalCatalog.entries.first { $0.name == "activity" }?.id)
    }

    @Test("Counted between two lines, once a period, silent while idle, and the last period at shutdown")
    func periods() async throws {
        let clock = ManualClock()
        let tally = ActivityTally()
        let logs = InMemoryLogHandler()
        let summary = ActivitySummary(
            tally: tally, waiting: { 7 }, interval: .seconds(60), stopwatch: clock.stopwatch,
            logger: Logger(label: "test", factory: { _ in logs })
        )
        func lines() -> [String] { logs.entries.filter { $0.level == .info }.map { "\($0.message)" } }
        try await testGracefulShutdown { trigger in
            async let running: Void = summary.run()
            try await eventually(timeout: .seconds(10), "the summary asleep") { clock.wakeUps == [.seconds(60)] }
            for _ in 0..<3 { tally.countAccepted() }
            tally.countSent()
            tally.countSent()
            clock.advance(by: .seconds(60))
            try await eventually(timeout: .seconds(10), "the first line") { lines().count == 1 }
            #expect(lines() == ["Activity: 3 accepted, 2 sent in the last 60 s; 7 waiting"])

            // A quiet minute: no line.
            try await eventually(timeout: .seconds(10), "asleep again") { clock.wakeUps == [.seconds(120)] }
            clock.advance(by: .seconds(60))
            try await eventually(timeout: .seconds(10), "asleep a third time") { clock.wakeUps == [.seconds(180)] }
            #expect(lines().count == 1, "\(lines())")

            // Shutdown says what the last, partial period did.
            tally.countFailed(2)
            tally.countExpired()
            clock.advance(by: .seconds(15))
            trigger.triggerGracefulShutdown()
            try await running
        }
        #expect(lines() == [
            "Activity: 3 accepted, 2 sent in the last 60 s; 7 waiting",
            "Activity: 0 accepted, 0 sent, 2 failed, 1 expired in the last 15 s; 7 waiting",
        ])
    }
}
