import Foundation
import ParticipantInput
@testable import ParticipantOutbox
import ParticipantTestSupport
import ParticipantWire
import Testing

/// When the quota binds, peers (the users whose programs submitted the items) take turns: one
/// program's backlog does not queue ahead of another program's items.
@Suite struct PeerFairnessTests {
    let clock = ManualClock()

    func receipt(_ token: String, connection: String) -> ValidatedItem {
        .event(try! EventValidator.validate(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: ParticipantTestSupport.receipt("m-\(token)"),
            clientToken: token, connectionToken: connection
        )))
    }

    @Test("With many chats waiting, a later peer's one receipt is leased in the next round, not after the first peer's backlog")
    func backlogDoesNotStarveAnotherPeer() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            // Peer 1000: 600 receipts on 600 fresh chats (more than the lease's connection scan).
            _ = try await outbox.submit((0..<600).map { receipt("a\($0)", connection: "a-chat-\($0)") }, peer: 1000)
            clock.advance(by: .milliseconds(1))
            _ = try await outbox.submit([receipt("b0", connection: "b-chat")], peer: 2000)
            let first = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 2)
            #expect(Set(first.map(\.peer)) == [1000, 2000], "\(first.map(\.clientToken))")
            #expect(first.contains { $0.clientToken == "b0" })
        }
    }

    @Test("Peers alternate, the one served least recently first; inside a peer the order is as before")
    func peersAlternate() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            _ = try await outbox.submit((0..<5).map { receipt("a\($0)", connection: "a-chat-\($0)") }, peer: 1000)
            clock.advance(by: .milliseconds(1))
            _ = try await outbox.submit((0..<2).map { receipt("b\($0)", connection: "b-chat-\($0)") }, peer: 2000)
            var order: [String] = []
            for _ in 0..<7 {
                let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1)
                order += leased.map(\.clientToken)
                clock.advance(by: .milliseconds(1))
            }
            #expect(order == ["a0", "b0", "a1", "b1", "a2", "a3", "a4"])
            // In one lease too: every peer's first before any peer's second.
        }
        try await withTestOutbox(clock: clock) { outbox in
            _ = try await outbox.submit((0..<5).map { receipt("a\($0)", connection: "a-chat-\($0)") }, peer: 1000)
            _ = try await outbox.submit((0..<2).map { receipt("b\($0)", connection: "b-chat-\($0)") }, peer: 2000)
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 4)
            #expect(leased.map(\.clientToken).sorted() == ["a0", "a1", "b0", "b1"])
        }
    }

    @Test("One peer may hold its share of the outbox: beyond it its submissions fail PeerOutboxFull, alone in a batch, while another peer still stores")
    func shareOfTheOutbox() async throws {
        var limits = OutboxLimits()
        limits.capacity = 10
        limits.peerShare = 0.5
        try await withTestOutbox(clock: clock, limits: limits) { outbox in
            let results = try await outbox.submit((0..<7).map { receipt("a\($0)", connection: "a-chat-\($0)") }, peer: 1000)
            #expect(results.prefix(5).allSatisfy { if case .success(.created) = $0 { true } else { false } })
            #expect(results.suffix(2).allSatisfy { $0 == .failure(.peerFull(share: 0.5, capacity: 5)) })
            // A resubmission of a stored token is still answered.
            let again = try await outbox.submit([receipt("a0", connection: "a-chat-0")], peer: 1000)
            guard case .success(.duplicate) = again[0] else { Issue.record("\(again)"); return }
            // Another peer gets in, up to the outbox's own capacity.
            let other = try await outbox.submit((0..<6).map { receipt("b\($0)", connection: "b-chat-\($0)") }, peer: 2000)
            #expect(other.prefix(5).allSatisfy { if case .success(.created) = $0 { true } else { false } })
            #expect(other.last == .failure(.full(capacity: 10)))
        }
    }
}

@Suite struct ServedTablesTests {
    @Test("When chats and peers were last served is kept while they are recent, and deleted once idle for outbox.connectionIdle")
    func servedRowsAreDeletedWhenIdle() async throws {
        let clock = ManualClock()
        try await withTestOutbox(clock: clock) { outbox in
            for index in 0..<20 { try await submitEvent(outbox, .typing, "t\(index)", connection: "chat-\(index)") }
            _ = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 20)
            func rows() async throws -> (Int, Int) {
                try await outbox.writer.perform { db in
                    (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM connection_served") ?? 0, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM peer_served") ?? 0)
                }
            }
            #expect(try await rows() == (20, 1))
            clock.advance(by: .seconds(599))
            _ = try await outbox.deleteExpiredHistory()
            #expect(try await rows() == (20, 1), "recent: kept")
            clock.advance(by: .seconds(2))
            _ = try await outbox.deleteExpiredHistory()
            #expect(try await rows() == (0, 0))
        }
    }
}
