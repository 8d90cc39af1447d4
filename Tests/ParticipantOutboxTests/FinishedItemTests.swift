import Foundation
import GRDB
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantTestSupport
import ParticipantWire
import Testing

/// A finished item keeps what deduplication needs (its key, a digest of its content, the
/// service's answer), not its content or its credential: the disk holds the content of waiting
/// items only, and a connection token no longer than its item waits.
@Suite struct FinishedItemTests {
    let clock = ManualClock()

    func message(_ token: String, _ text: String, connection: String = "conn") -> ValidatedMessage {
        try! MessageValidator.validate(MessageSubmission(contentType: MessageContentType.plainText.rawValue, content: text, clientToken: token, connectionToken: connection))
    }

    func receiptEvent(_ type: EventContentType, _ token: String, messageId: String, connection: String = "conn") -> ValidatedEvent {
        try! EventValidator.validate(EventSubmission(contentType: type.rawValue, content: receipt(messageId), clientToken: token, connectionToken: connection))
    }

    func holders(of text: String, in directory: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("outbox.sqlite") }.filter { name in
            try Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + name)).range(of: Data(text.utf8)) != nil
        }
    }

    @Test("A sent message keeps its answer and digest, not its content (gone from every file after the scrub); a resubmission is still told apart")
    func sentKeepsNoContent() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withTestOutbox(clock: clock, storage: .file(in: directory)) { outbox in
            let texts = (0..<10).map { "finished message text \($0) " + String(repeating: "z", count: 40) }
            for (index, text) in texts.enumerated() { _ = try await outbox.submit(message("m\(index)", text, connection: "conn-\(index)")) }
            for leased in try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 100) {
                try await outbox.record(.sent(id: "id-\(leased.clientToken)", absoluteTime: "t", processingStatus: nil), for: leased)
            }
            _ = try await outbox.submit(message("waiting", "waiting message text " + String(repeating: "w", count: 40)))
            let sent = try #require(try await outbox.event(clientToken: "m3"))
            #expect(sent.state == .sent && sent.content == nil && sent.connectionToken == nil)
            #expect(sent.serviceId == "id-m3")
            #expect(sent.contentDigest == ContentDigest.of(texts[3]))
            // The same resubmission is a duplicate; another text under the same token is not.
            guard case .duplicate = try await outbox.submit(message("m3", texts[3], connection: "conn-3")) else { Issue.record("not a duplicate"); return }
            guard case .mismatch = try await outbox.submit(message("m3", texts[4], connection: "conn-3")) else { Issue.record("not a mismatch"); return }
            try await outbox.scrub()
            for text in texts { #expect(try holders(of: text, in: directory).isEmpty, "\(text)") }
            #expect(!(try holders(of: "waiting message text", in: directory)).isEmpty, "the search finds content that is there")
        }
    }

    @Test("A superseded receipt keeps no content, stored superseded on arrival or later")
    func supersededKeepsNoContent() async throws {
        try await withTestOutbox(clock: clock, coalescing: .perMessage) { outbox in
            _ = try await outbox.submit(receiptEvent(.messageDelivered, "delivered", messageId: "m1"))
            _ = try await outbox.submit(receiptEvent(.messageRead, "read", messageId: "m1"))
            // A delivered receipt after the read one is redundant on arrival.
            _ = try await outbox.submit(receiptEvent(.messageDelivered, "late", messageId: "m1"))
            for token in ["delivered", "late"] {
                let item = try #require(try await outbox.event(clientToken: token))
                #expect(item.state == .superseded && item.content == nil && item.connectionToken == nil, "\(token)")
                guard case .duplicate = try await outbox.submit(receiptEvent(.messageDelivered, token, messageId: "m1")) else { Issue.record("\(token): not a duplicate"); return }
            }
            #expect(try await outbox.event(clientToken: "read")?.content == receipt("m1"), "a waiting item keeps its content")
        }
    }

    @Test("A failed item's token is erased when it fails; retry takes a current one, and the item then belongs to it")
    func retryWithANewToken() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            _ = try await outbox.submit(message("m", "hello", connection: "old-token"))
            let leased = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).first)
            try await outbox.record(.failed(ErrorBody(code: "AccessDeniedException", message: "expired"), block: nil), for: leased)
            let failed = try #require(try await outbox.event(clientToken: "m"))
            #expect(failed.state == .failed && failed.connectionToken == nil && failed.content == "hello")
            await #expect(throws: QueueCommandError.tokenErased(clientToken: "m")) { try await outbox.retry(clientToken: "m") }
            #expect(try await outbox.retryAllFailed() == 0)
            let retried = try await outbox.retry(clientToken: "m", connectionToken: "new-token")
            #expect(retried.state == .queued && retried.connectionToken == "new-token")
            #expect(retried.connectionHash == ConnectionHash.of("new-token", instance: InstanceName.defaultName))
            let again = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).first)
            #expect(again.clientToken == "m" && again.connectionToken == "new-token" && again.content == "hello")
        }
    }

    @Test("An item of a chat named by a participant token is retried without a token while its connection is kept, and not after")
    func retryOfAParticipantChat() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            let item = try EventValidator.validate(EventSubmission(
                contentType: EventContentType.messageRead.rawValue, content: receipt("m"), clientToken: "p", connectionToken: nil, participantToken: "participant-token"
            ))
            _ = try await outbox.submit(item)
            let leased = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).first)
            try await outbox.record(.failed(ErrorBody(code: "ValidationException", message: "no"), block: nil), for: leased)
            #expect(try await outbox.retryAllFailed() == 1)
            let again = try #require(try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1).first)
            #expect(again.viaParticipant && again.connectionHash == leased.connectionHash)
            try await outbox.record(.failed(ErrorBody(code: "ValidationException", message: "no"), block: nil), for: again)
            try await outbox.writer.perform { db in try db.execute(sql: "DELETE FROM participant_connection") }
            await #expect(throws: QueueCommandError.tokenErased(clientToken: "p")) { try await outbox.retry(clientToken: "p") }
            #expect(try await outbox.retryAllFailed() == 0)
        }
    }

    @Test("Schema v13 gives every stored item its digest, drops finished items' content and erases finished items' tokens")
    func upgradeFromVersion12() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let queue = try outboxFile(migratedUpTo: "v12: ClientTokens per peer", in: directory)
        try await queue.write { db in
            for (token, state) in [("queued", "queued"), ("sent", "sent"), ("superseded", "superseded"), ("failed", "failed"), ("expired", "expired")] {
                try db.execute(sql: """
                    INSERT INTO event (clientToken, contentType, content, connectionToken, connectionHash, state, acceptedAt, updatedAt, nextAttemptAt, deadline, priority, peer)
                    VALUES (?, 'text/plain', ?, 'conn', ?, ?, 0, 0, NULL, 9999999999999, 4, 1000)
                    """, arguments: [token, "text of \(token)", ConnectionHash.of("conn", instance: InstanceName.defaultName), state])
            }
        }
        try queue.close()
        try await withTestOutbox(clock: clock, storage: .file(in: directory)) { outbox in
            for token in ["queued", "sent", "superseded", "failed", "expired"] {
                let item = try #require(try await outbox.event(clientToken: token))
                #expect(item.contentDigest == ContentDigest.of("text of \(token)"), "\(token)")
                let keepsContent = token == "queued" || token == "failed" || token == "expired"
                #expect(item.content == (keepsContent ? "text of \(token)" : nil), "\(token)")
                #expect(item.connectionToken == (token == "queued" ? "conn" : nil), "\(token)")
            }
            // A file made before incremental vacuum is rebuilt once to have it.
            #expect(try await outbox.writer.perform { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") } == 2)
            let same = message("sent", "text of sent")
            guard case .duplicate = try await outbox.submit([.message(same)], peer: 1000)[0].get() else { Issue.record("not a duplicate"); return }
            guard case .mismatch = try await outbox.submit([.message(message("sent", "other text"))], peer: 1000)[0].get() else { Issue.record("not a mismatch"); return }
        }
    }

    @Test("The file shrinks as the outbox empties: free pages beyond a quarter of it are given back (auto_vacuum INCREMENTAL on the writer)")
    func fileShrinksAsItEmpties() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var limits = OutboxLimits()
        limits.retention = .seconds(60)
        let path = directory.path + "/outbox.sqlite"
        func size() throws -> Int { try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0 }
        try await withTestOutbox(clock: clock, storage: .file(in: directory), limits: limits) { outbox in
            #expect(try await outbox.writer.perform { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") } == 2)
            let text = String(repeating: "a", count: 1_000)
            for batch in 0..<60 {
                let items = (0..<100).map { index in ValidatedItem.message(message("m-\(batch)-\(index)", text, connection: "c-\(batch)-\(index)")) }
                _ = try await outbox.submit(items, peer: 1000)
            }
            while true {
                let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 500)
                if leased.isEmpty { break }
                for item in leased { try await outbox.record(.sent(id: "id", absoluteTime: "t", processingStatus: nil), for: item) }
            }
            try await outbox.scrub()
            let full = try size()
            #expect(try await outbox.reclaimFreePages() == 0, "nothing past retention yet: the free pages are kept for new items")
            clock.advance(by: .seconds(61))
            while try await outbox.deleteExpiredHistory() > 0 {}
            let released = try await outbox.reclaimFreePages(step: 500)
            try await outbox.scrub()
            let empty = try size()
            #expect(released > 0)
            #expect(empty < full / 2, "\(full) bytes, then \(empty)")
            #expect(empty <= 1_200 * 4_096, "what is kept: the 1,024 free pages, the schema and the pointer maps")
        }
    }

    @Test("The digest tells no content from empty content and from any other text")
    func digest() {
        #expect(ContentDigest.of(nil) != ContentDigest.of(""))
        #expect(ContentDigest.of("a") != ContentDigest.of("b"))
        #expect(ContentDigest.of("a\u{0}b") != ContentDigest.of("a"))
        #expect(ContentDigest.of("é") == ContentDigest.of("é") && ContentDigest.of("é").count == 16)
    }
}

/// The stored keys' bytes do not change between versions: an item stored by an earlier daemon is
/// found and compared by the same digest and hash (known answers from Python's hashlib).
@Suite struct StoredKeyTests {
    static func hex(_ data: Data) -> String {
        data.map { String(format: "%02x", $0) }.joined()
    }

    @Test("ContentDigest: the first 16 bytes of SHA-256 over a marker byte and the content's UTF-8")
    func contentDigest() {
        #expect(Self.hex(ContentDigest.of("hello")) == "cceeb7a985ecc3dabcb4c8f666cd637f")
        #expect(Self.hex(ContentDigest.of("é 👍")) == "1a8db4db60b6d3c951a26ac699d311c7")
        #expect(Self.hex(ContentDigest.of("")) == "4bf5122f344554c53bde2ebb8cd2b7e3")
        #expect(Self.hex(ContentDigest.of(nil)) == "6e340b9cffb37a989ca544e6bb780a2c")
    }

    @Test("ConnectionHash: the first 8 bytes of SHA-256 in hex, the instance's name and a NUL first for another instance")
    func connectionHash() {
        #expect(ConnectionHash.of("conn", instance: InstanceName.defaultName) == "080412764efce5dc")
        #expect(ConnectionHash.of("conn", instance: "b") == "81a0c49944c325d3")
        #expect(ConnectionHash.of(.participant("tok", connectParticipant: false), instance: InstanceName.defaultName) == "cf66ecfa45225ab2")
    }
}
