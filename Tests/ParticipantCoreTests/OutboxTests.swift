import Foundation
import Logging
import ParticipantCore
import ParticipantWire
import Synchronization
import Testing

/// A wall clock the test moves by hand.
final class ManualClock: Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_700_000_000))
    var now: Date { current.withLock { $0 } }
    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    var wallClock: WallClock { WallClock(now: { self.now }) }
}

@Suite struct OutboxTests {
    let clock = ManualClock()

    /// Opens an outbox in a temporary folder, runs its writer, and closes it after `body`.
    func withOutbox<T>(
        directory: TemporaryDirectory? = nil,
        _ body: (Outbox) async throws -> T
    ) async throws -> T {
        let directory = try directory ?? TemporaryDirectory()
        let outbox = try Outbox.open(path: directory.path + "/outbox.sqlite", clock: clock.wallClock, logger: Logger(label: "test"))
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

    func event(_ type: EventContentType = .typing, token: String? = nil, connection: String = "conn", content: String? = nil) -> ValidatedEvent {
        try! EventValidator.validate(EventSubmission(contentType: type.rawValue, content: content ?? type.sampleContent(), clientToken: token, connectionToken: connection))
    }

    @Test func submitStoresOnceAndComparesParameters() async throws {
        try await withOutbox { outbox in
            let first = try await outbox.submit(event(.messageRead, token: "t1", content: receipt("m")))
            guard case .created(let stored) = first else { Issue.record("not created"); return }
            #expect(stored.state == .queued)
            #expect(stored.deadline == clock.now.addingTimeInterval(86_400))

            #expect(try await outbox.submit(event(.messageRead, token: "t1", content: receipt("m"))) == .duplicate(stored))
            for other in [event(.messageDelivered, token: "t1", content: receipt("m")),
                          event(.messageRead, token: "t1", content: receipt("n")),
                          event(.messageRead, token: "t1", connection: "other", content: receipt("m"))] {
                guard case .mismatch = try await outbox.submit(other) else { Issue.record("expected a mismatch"); return }
            }
            #expect(try await outbox.event(clientToken: "t1") == stored)
            #expect(try await outbox.countsByState()[.queued] == 1)
        }
    }

    @Test func concurrentSubmissionsAreAllStored() async throws {
        try await withOutbox { outbox in
            let outcomes = try await withThrowingTaskGroup(of: SubmitOutcome.self) { group in
                for index in 0..<500 {
                    group.addTask { try await outbox.submit(event(token: "t\(index % 250)", connection: "c\(index % 250)")) }
                }
                return try await group.reduce(into: [SubmitOutcome]()) { $0.append($1) }
            }
            let created = outcomes.filter { if case .created = $0 { true } else { false } }.count
            let duplicates = outcomes.filter { if case .duplicate = $0 { true } else { false } }.count
            #expect(created == 250)
            #expect(duplicates == 250)
            #expect(try await outbox.countsByState()[.queued] == 250)
        }
    }

    @Test func leasesOnlyTheOldestWaitingEventOfEachConnection() async throws {
        try await withOutbox { outbox in
            for index in 0..<3 {
                _ = try await outbox.submit(event(token: "a\(index)", connection: "A"))
                _ = try await outbox.submit(event(token: "b\(index)", connection: "B"))
            }
            let first = try await outbox.leaseDue(limit: 10)
            #expect(Set(first.map(\.clientToken)) == ["a0", "b0"])
            #expect(first.allSatisfy { $0.state == .sending && $0.attempts == 1 && $0.connectionToken != nil })
            #expect(try await outbox.leaseDue(limit: 10).isEmpty)

            let a0 = first.first { $0.clientToken == "a0" }!
            try await outbox.record(.sent(id: "id-a0", absoluteTime: "2026-01-01T00:00:00.000Z"), for: a0)
            #expect(try await outbox.leaseDue(limit: 10).map(\.clientToken) == ["a1"])

            let sent = try #require(try await outbox.event(clientToken: "a0"))
            #expect(sent.state == .sent)
            #expect(sent.serviceId == "id-a0")
            #expect(sent.connectionToken == nil)  // erased once final
        }
    }

    @Test func retryWaitsUntilItsTimeAndBlocksLaterEventsOfTheConnection() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(event(.messageRead, token: "r0", content: receipt("1")))
            _ = try await outbox.submit(event(.messageRead, token: "r1", content: receipt("2")))
            let leased = try await outbox.leaseDue(limit: 5)
            try await outbox.record(.retry(at: clock.now.addingTimeInterval(2), error: ErrorBody(code: "ThrottlingException", message: "slow")), for: leased[0])
            #expect(try await outbox.leaseDue(limit: 5).isEmpty)
            #expect(try await outbox.nextWakeUp(after: clock.now) == clock.now.addingTimeInterval(2))
            clock.advance(by: 2)
            let again = try await outbox.leaseDue(limit: 5)
            #expect(again.map(\.clientToken) == ["r0"])
            #expect(again[0].attempts == 2)
            #expect(again[0].lastError?.code == "ThrottlingException")
        }
    }

    @Test func overdueEventsExpireAndAreNeverLeased() async throws {
        try await withOutbox { outbox in
            _ = try await outbox.submit(event(.typing, token: "typing"))
            _ = try await outbox.submit(event(.messageRead, token: "read", connection: "other"))
            clock.advance(by: 10)
            #expect(try await outbox.leaseDue(limit: 5).map(\.clientToken) == ["read"])
            let expired = try await outbox.expireOverdue()
            #expect(expired.map(\.clientToken) == ["typing"])
            let record = try #require(try await outbox.event(clientToken: "typing"))
            #expect(record.state == .expired)
            #expect(record.connectionToken == nil)
            #expect(record.lastError?.code == "DeadlineExceeded")
        }
    }

    @Test func reopeningQueuesInterruptedEventsAgain() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withOutbox(directory: directory) { outbox in
            _ = try await outbox.submit(event(token: "in-flight"))
            #expect(try await outbox.leaseDue(limit: 1).count == 1)
        }
        try await withOutbox(directory: directory) { outbox in
            let record = try #require(try await outbox.event(clientToken: "in-flight"))
            #expect(record.state == .queued)
            #expect(record.attempts == 1)
            #expect(try await outbox.leaseDue(limit: 1).map(\.clientToken) == ["in-flight"])
        }
    }

    @Test func aSecondOpenOfTheSameDatabaseIsRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/outbox.sqlite"
        let first = try Outbox.open(path: path, logger: Logger(label: "test"))
        #expect(throws: OutboxError.self) { try Outbox.open(path: path, logger: Logger(label: "test")) }
        _ = first
    }
}

@Suite struct OutboxFileTests {
    @Test("The database, which holds connection tokens, is readable by its owner only")
    func databaseIsPrivate() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/state/outbox.sqlite"
        let outbox = try Outbox.open(path: path, logger: Logger(label: "test"))
        let writer = Task { try await outbox.writer.run() }
        _ = try await outbox.submit(try EventValidator.validate(EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: "c")))
        writer.cancel()
        _ = try? await writer.value
        for file in [path, path + "-wal"] {
            let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }
        let folderMode = try FileManager.default.attributesOfItem(atPath: directory.path + "/state")[.posixPermissions] as? Int
        #expect(folderMode == 0o750)
    }
}
