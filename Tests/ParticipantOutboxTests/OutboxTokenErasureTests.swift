import Foundation
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
}
