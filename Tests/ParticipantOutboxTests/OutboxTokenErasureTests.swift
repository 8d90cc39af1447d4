import Foundation
import GRDB
import Logging
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantWire
import Testing
import ParticipantTestSupport

/// A connection token is a credential: once its event ended it must not linger in any outbox file
/// (WAL frames, freed cell space), after the janitor's scrub or a clean stop.
@Suite struct OutboxTokenErasureTests {
    let clock = ManualClock()

    func files(in directory: TemporaryDirectory) throws -> [String: Data] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("outbox.sqlite") }
        return Dictionary(uniqueKeysWithValues: try names.map { ($0, try Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + $0))) })
    }

    func holders(of token: String, in directory: TemporaryDirectory) throws -> [String] {
        try files(in: directory).filter { $0.value.range(of: Data(token.utf8)) != nil }.map(\.key).sorted()
    }

    func event(_ token: String, connection: String) -> ValidatedEvent {
        try! EventValidator.validate(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: receipt("m-\(token)"), clientToken: token, connectionToken: connection
        ))
    }

    /// Twenty events sent, each with its own connection token, and one still waiting.
    func sendTwenty(_ outbox: Outbox) async throws -> [String] {
        let connections = (0..<20).map { "finished-connection-token-\($0)-" + String(repeating: "x", count: 40) }
        for (index, connection) in connections.enumerated() {
            _ = try await outbox.submit(event("sent-\(index)", connection: connection))
        }
        for leased in try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 100) {
            try await outbox.record(.sent(id: "id", absoluteTime: "t"), for: leased)
        }
        _ = try await outbox.submit(event("waiting", connection: "waiting-connection-token-" + String(repeating: "y", count: 40)))
        return connections
    }

    @Test("After the scrub no finished event's token is in the database or its WAL; a waiting one's still is")
    func scrubErasesFinishedTokens() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withTestOutbox(clock: clock, storage: .file(in: directory)) { outbox in
            let connections = try await sendTwenty(outbox)
            try await outbox.scrub()
            for connection in connections {
                #expect(try holders(of: connection, in: directory).isEmpty, "\(connection)")
            }
            #expect(!(try holders(of: "waiting-connection-token-", in: directory)).isEmpty, "the search finds tokens that are there")
        }
    }

    @Test("After a clean stop no finished event's token is in any outbox file")
    func cleanStopErasesFinishedTokens() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let connections = try await withTestOutbox(clock: clock, storage: .file(in: directory)) { outbox in
            try await sendTwenty(outbox)
        }
        for connection in connections {
            #expect(try holders(of: connection, in: directory).isEmpty, "\(connection)")
        }
    }

    @Test("A participant token and the connection made from it stay while the chat waits, and leave every file once it was idle for connections.idleSeconds")
    func participantTokensErasedAfterIdle() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var limits = OutboxLimits()
        limits.connectionIdle = .seconds(600)
        try await withTestOutbox(clock: clock, storage: .file(in: directory), limits: limits) { outbox in
            let participant = "participant-token-" + String(repeating: "p", count: 40)
            let connection = "created-connection-token-" + String(repeating: "c", count: 40)
            let item = try EventValidator.validate(EventSubmission(
                contentType: EventContentType.messageRead.rawValue, content: receipt("m"), clientToken: "a", connectionToken: nil, participantToken: participant
            ))
            _ = try await outbox.submit(item)
            let leased = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).first)
            #expect(leased.connectionToken == nil && leased.viaParticipant)
            try await outbox.recordConnection(for: leased, connectionToken: connection, expiresAt: clock.date.addingTimeInterval(86_400), connected: true)
            // Waiting (in flight) longer than the idle time: kept.
            clock.advance(by: .seconds(601))
            _ = try await outbox.deleteExpiredHistory()
            #expect(try await outbox.participantConnection(for: leased)?.connectionToken == connection)
            try await outbox.record(.sent(id: "id", absoluteTime: "t"), for: leased)
            // Sent, but its last submission is younger than the idle time for a moment longer.
            _ = try await outbox.submit(try EventValidator.validate(EventSubmission(
                contentType: EventContentType.typing.rawValue, clientToken: "b", connectionToken: nil, participantToken: participant
            )))
            let typing = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).first)
            try await outbox.record(.sent(id: "id", absoluteTime: "t"), for: typing)
            clock.advance(by: .seconds(599))
            _ = try await outbox.deleteExpiredHistory()
            #expect(try await outbox.participantConnection(for: leased) != nil)
            clock.advance(by: .seconds(2))
            _ = try await outbox.deleteExpiredHistory()
            #expect(try await outbox.participantConnection(for: leased) == nil)
            try await outbox.scrub()
            #expect(try holders(of: participant, in: directory).isEmpty)
            #expect(try holders(of: connection, in: directory).isEmpty)
        }
    }

    /// The outbox's files copied as a crash would leave them (no `-shm`: SQLite recovers from
    /// the WAL), and its events counted by SQLite alone.
    func eventsAfterACrash(_ directory: TemporaryDirectory) throws -> Int {
        let copy = try TemporaryDirectory()
        defer { copy.remove() }
        for name in ["outbox.sqlite", "outbox.sqlite-wal"] {
            try FileManager.default.copyItem(atPath: directory.path + "/" + name, toPath: copy.path + "/" + name)
        }
        let queue = try DatabaseQueue(path: copy.path + "/outbox.sqlite")
        defer { try? queue.close() }
        return try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event") ?? -1 }
    }

    @Test("After the scrub the WAL keeps its room, as zeros: later commits overwrite it, and SQLite recovers from it as from any WAL")
    func scrubRefillsTheWAL() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let wal = directory.path + "/outbox.sqlite-wal"
        try await withTestOutbox(clock: clock, storage: .file(in: directory)) { outbox in
            _ = try await sendTwenty(outbox)
            let before = WALRefill.size(of: wal)
            #expect(before > 0 && before <= WALRefill.maxBytes)
            try await outbox.scrub()
            let zeros = try Data(contentsOf: URL(fileURLWithPath: wal))
            #expect(zeros.count == Int(before), "the WAL written back to the size it had")
            #expect(zeros.allSatisfy { $0 == 0 })
            // Recovery from a WAL of zeros: nothing in it, everything in the database.
            #expect(try eventsAfterACrash(directory) == 21)
            // The next commit overwrites the start of the room instead of growing the file,
            // and is recovered from it.
            _ = try await outbox.submit(event("after-scrub", connection: "after-scrub-connection"))
            #expect(WALRefill.size(of: wal) == before)
            #expect(try eventsAfterACrash(directory) == 22)
        }
    }

    @Test("The room written back is the WAL's own size, at most wal_autocheckpoint's frames")
    func refillBytes() {
        #expect(WALRefill.bytes(sizeBefore: 0) == 0)
        #expect(WALRefill.bytes(sizeBefore: 41_232) == 41_232)
        #expect(WALRefill.bytes(sizeBefore: WALRefill.maxBytes * 3) == WALRefill.maxBytes)
        #expect(WALRefill.maxBytes == 32 + 4_000 * 4_120)
    }
}
