import Foundation
import GRDB
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
