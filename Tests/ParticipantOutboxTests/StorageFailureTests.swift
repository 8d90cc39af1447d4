import Foundation
import GRDB
import InMemoryLogging
import Logging
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantWire
import ParticipantTestSupport
import Testing

/// Fail-stop: after an I/O error or a damaged file while committing, the writer acknowledges
/// nothing more. (The real binary under a failed fdatasync: `DurabilityTests.failStopOnAFailedSync`.)
@Suite struct StorageFailureTests {
    let clock = ManualClock()

    @Test("Which errors stop the writer: I/O errors and damage, not a full disk or a constraint", arguments: [
        (ResultCode.SQLITE_IOERR_FSYNC, true), (.SQLITE_IOERR_WRITE, true), (.SQLITE_IOERR, true), (.SQLITE_CORRUPT, true),
        (.SQLITE_NOTADB, true), (.SQLITE_FULL, false), (.SQLITE_CONSTRAINT_UNIQUE, false), (.SQLITE_BUSY, false),
    ])
    func classification(code: ResultCode, stops: Bool) {
        #expect((OutboxError.storageFailure(DatabaseError(resultCode: code)) != nil) == stops)
    }

    @Test("An I/O error inside a write: none of its batch committed, every later write refused with the failure")
    func ioErrorStopsTheWriter() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            try await submitEvent(outbox, .typing, "before", connection: "a")
            await #expect(throws: OutboxError.self) {
                try await outbox.writer.perform { db in
                    try db.execute(sql: "UPDATE event SET attempts = 99")
                    throw DatabaseError(resultCode: .SQLITE_IOERR_FSYNC, message: "disk I/O error")
                }
            }
            #expect(outbox.writer.failure?.contains("disk I/O error") == true)
            do {
                _ = try await outbox.submit(try EventValidator.validate(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "after", connectionToken: "a")))
                Issue.record("a write after the failure was acknowledged")
            } catch OutboxError.failed(let reason) {
                #expect(reason.contains("disk I/O error"))
            }
            #expect(try await outbox.event(clientToken: "before")?.attempts == 0, "the failed batch's change was rolled back")
            #expect(try await outbox.event(clientToken: "after") == nil)
        }
    }

    @Test("A storage fault outside a commit (the checkpoint's sync) stops the writer the same way, waking it")
    func faultOutsideACommit() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            try await submitEvent(outbox, .typing, "before", connection: "a")
            outbox.writer.fail("SQLite 778: checkpoint sync failed")
            await #expect(throws: OutboxError.failed("SQLite 778: checkpoint sync failed")) {
                _ = try await outbox.submit(try EventValidator.validate(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "after", connectionToken: "a")))
            }
        }
    }

    @Test("A full disk does not stop the writer")
    func fullDiskDoesNotStop() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            await #expect(throws: (any Error).self) {
                try await outbox.writer.perform { _ in throw DatabaseError(resultCode: .SQLITE_FULL) }
            }
            #expect(outbox.writer.failure == nil)
            try await submitEvent(outbox, .typing, "after", connection: "a")
        }
    }
}

/// Damage found at start: `PRAGMA quick_check` when the outbox opens.
@Suite struct DamagedFileTests {
    let clock = ManualClock()

    @Test("A damaged file does not open: damaged, naming the file and the way back")
    func damagedFileRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await damagedOutbox(in: directory)
        do {
            _ = try Outbox.open(path: path, clock: clock.wallClock, logger: Logger(label: "test"))
            Issue.record("a damaged file was opened")
        } catch let error as OutboxError {
            guard case .damaged(let named, _) = error else { Issue.record("\(error)"); return }
            #expect(named == path)
            #expect(error.description.contains("restore the last backup") && error.description.contains(".recover"), "\(error)")
        }
    }

    @Test("A sound file is checked and opens; with the check off it is not checked")
    func soundFileOpens() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let logs = InMemoryLogHandler()
        _ = try Outbox.open(path: directory.path + "/outbox.sqlite", clock: clock.wallClock, logger: Logger(label: "test", factory: { _ in logs }))
        #expect(logs.entries.contains { $0.message == "The outbox was checked (quick_check)" && $0.metadata["outbox.check_ms"] != nil })
        let unchecked = InMemoryLogHandler()
        var limits = OutboxLimits()
        limits.startupCheck = .zero
        let other = try TemporaryDirectory()
        defer { other.remove() }
        _ = try Outbox.open(path: other.path + "/outbox.sqlite", limits: limits, clock: clock.wallClock, logger: Logger(label: "test", factory: { _ in unchecked }))
        #expect(!unchecked.entries.contains { $0.message == "The outbox was checked (quick_check)" })
    }
}

/// A held item does not keep its connection token forever.
@Suite struct HeldItemTests {
    @Test("An item held longer than outbox.holdMaxSeconds ends expired, its token erased, saying why; retry then says it cannot be sent")
    func heldTooLong() async throws {
        let clock = ManualClock()
        var limits = OutboxLimits()
        limits.holdMax = .seconds(3_600)
        try await withTestOutbox(clock: clock, limits: limits) { outbox in
            try await submitEvent(outbox, .typing, "held", connection: "a")
            try await submitEvent(outbox, .typing, "queued", connection: "b")
            _ = try await outbox.hold(clientToken: "held")
            clock.advance(by: .seconds(3_599))
            #expect(try await outbox.expireHeldTooLong() == 0)
            clock.advance(by: .seconds(2))
            #expect(try await outbox.expireHeldTooLong() == 1)
            let ended = try #require(try await outbox.event(clientToken: "held"))
            #expect(ended.state == .expired && ended.connectionToken == nil)
            #expect(ended.lastError?.code == "HeldTooLong" && ended.lastError?.message.contains("outbox.holdMaxSeconds (3600 s)") == true)
            #expect(try await outbox.event(clientToken: "queued")?.state == .queued, "only held items end")
            await #expect(throws: QueueCommandError.tokenErased(clientToken: "held")) { try await outbox.retry(clientToken: "held") }
        }
    }
}
