import Foundation
import GRDB
import ParticipantInput
@testable import ParticipantOutbox
import ParticipantTestSupport
import ParticipantWire
import Testing

/// Each peer owns its items: its ClientTokens are its own namespace, and a queue command in its
/// scope finds nothing of another's.
@Suite struct ItemOwnershipTests {
    let clock = ManualClock()

    func typing(_ token: String, connection: String) -> ValidatedItem {
        .event(try! EventValidator.validate(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: token, connectionToken: connection)))
    }

    @Test("Two peers' same ClientToken is two items; each peer's resubmission is its own duplicate")
    func tokensPerPeer() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            let first = try await outbox.submit([typing("t", connection: "a")], peer: 1000)[0].get()
            let second = try await outbox.submit([typing("t", connection: "b")], peer: 2000)[0].get()
            guard case .created(let mine) = first, case .created(let theirs) = second else { Issue.record("\(first) \(second)"); return }
            #expect(mine.seq != theirs.seq)
            #expect(mine.record.owner == ItemOwner(uid: 1000, user: PeerName.user(of: 1000)))
            // The same again from each peer: its own item, unchanged; another connection is a mismatch of its own item.
            guard case .duplicate(let again) = try await outbox.submit([typing("t", connection: "b")], peer: 2000)[0].get() else { Issue.record("no duplicate"); return }
            #expect(again.seq == theirs.seq)
            guard case .mismatch(let stored) = try await outbox.submit([typing("t", connection: "b")], peer: 1000)[0].get() else { Issue.record("no mismatch"); return }
            #expect(stored.seq == mine.seq)
        }
    }

    @Test("In a peer's scope another's item is not found and not changed; everyone's scope names the owners of an ambiguous token")
    func scopes() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            _ = try await outbox.submit([typing("t", connection: "a"), typing("only-a", connection: "a2")], peer: 1000)
            _ = try await outbox.submit([typing("t", connection: "b")], peer: 2000)
            #expect(try await outbox.list(state: nil, connectionHashPrefix: nil, in: .peer(2000), limit: 10).map(\.clientToken) == ["t"])
            #expect(try await outbox.event(clientToken: "only-a", in: .peer(2000)) == nil)
            for change in [{ try await outbox.hold(clientToken: "only-a", in: .peer(2000)) },
                           { try await outbox.delete(clientToken: "only-a", in: .peer(2000)) },
                           { try await outbox.retry(clientToken: "only-a", in: .peer(2000)) }] as [@Sendable () async throws -> StoredEvent] {
                await #expect(throws: QueueCommandError.notFound(clientToken: "only-a")) { try await change() }
            }
            #expect(try await outbox.event(clientToken: "only-a")?.state == .queued)
            await #expect(throws: QueueCommandError.ambiguous(clientToken: "t", peers: [1000, 2000])) {
                try await outbox.hold(clientToken: "t")
            }
            #expect(try await outbox.hold(clientToken: "t", in: .peer(2000)).state == .held)
            #expect(try await outbox.event(clientToken: "t", in: .peer(1000))?.state == .queued)
            #expect(Outbox.totals(try await outbox.countsByInstance(in: .peer(1000)))[.queued] == 2)
            #expect(try await outbox.countsByKind(in: .peer(2000))[.event]?[.held] == 1)
        }
    }

    @Test("Schema v12 rebuilds a v11 file's table: rows, sequence numbers and indexes kept, tokens then per peer")
    func upgradeFromVersion11() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let queue = try outboxFile(migratedUpTo: "v11: peers", in: directory)
        let indexesBefore = try await queue.read { db in
            try String.fetchAll(db, sql: "SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event' AND sql IS NOT NULL ORDER BY name")
        }
        try await queue.write { db in
            for (index, token) in ["old-1", "old-2", "old-3"].enumerated() {
                try db.execute(sql: """
                    INSERT INTO event (clientToken, contentType, content, connectionToken, connectionHash, state, acceptedAt, updatedAt, nextAttemptAt, deadline, priority, peer)
                    VALUES (?, 'application/vnd.amazonaws.connect.event.typing', NULL, 'conn', ?, 'queued', 0, 0, 0, 9999999999999, 3, ?)
                    """, arguments: [token, ConnectionHash.of("conn-\(index)", instance: InstanceName.defaultName), index == 0 ? -1 : 1000])
            }
            // The newest deleted: its number is not used again.
            try db.execute(sql: "DELETE FROM event WHERE clientToken = 'old-3'")
        }
        // v12 alone (later versions change indexes of their own), then the outbox on the file.
        try OutboxSchema.migrator.migrate(queue, upTo: "v12: ClientTokens per peer")
        let (indexes, tokens) = try await queue.read { db in
            (try String.fetchAll(db, sql: "SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event' AND sql IS NOT NULL ORDER BY name"),
             try Row.fetchAll(db, sql: "SELECT seq, clientToken, peer FROM event ORDER BY seq").map { "\($0["seq"] as Int64) \($0["clientToken"] as String) \($0["peer"] as Int64)" })
        }
        #expect(indexes == (indexesBefore + ["event_token: CREATE UNIQUE INDEX event_token ON event(clientToken, peer)"]).sorted())
        #expect(tokens == ["1 old-1 -1", "2 old-2 1000"])
        try queue.close()
        try await withTestOutbox(clock: clock, storage: .file(in: directory)) { outbox in
            guard case .created(let new) = try await outbox.submit([typing("old-2", connection: "other")], peer: 2000)[0].get() else {
                Issue.record("another peer's token was not its own"); return
            }
            #expect(new.seq == 4, "sequence numbers go on after the deleted one")
            guard case .duplicate = try await outbox.submit([typing("old-2", connection: "conn-1")], peer: 1000)[0].get() else {
                Issue.record("the owner's resubmission is not a duplicate"); return
            }
        }
    }
}
