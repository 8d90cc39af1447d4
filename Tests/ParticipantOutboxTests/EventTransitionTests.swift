import Foundation
import GRDB
@testable import ParticipantOutbox
import ParticipantWire
import Testing
import ParticipantTestSupport

/// The table of an event's life: which state may follow which, and what each step does to the
/// waiting count. Every state change of the outbox is generated from it.
@Suite struct EventTransitionTests {
    /// Every move the outbox may make, written out by hand: the table must say exactly these.
    static let expected: Set<String> = [
        "queued>sending", "queued>held", "queued>expired", "queued>failed", "queued>superseded",
        "sending>sent", "sending>queued", "sending>failed", "sending>expired",
        "held>queued", "held>expired",
        "failed>queued", "expired>queued",
    ]

    @Test("Every pair of states: allowed exactly when the table lists it", arguments: EventState.allCases)
    func everyPair(from: EventState) {
        for to in EventState.allCases {
            #expect(EventTransition.allows(from: from, to: to) == Self.expected.contains("\(from.rawValue)>\(to.rawValue)"), "\(from) -> \(to)")
        }
    }

    @Test("Sent and superseded are final for good; failed and expired leave only by an operator's retry; nothing moves to the same state")
    func finalStates() {
        for transition in EventTransition.all {
            #expect(!transition.from.contains(.sent) && !transition.from.contains(.superseded), "\(transition)")
            if transition.from.contains(.failed) || transition.from.contains(.expired) { #expect(transition == .retryByOperator) }
            #expect(!transition.from.contains(transition.to), "\(transition)")
        }
    }

    @Test("Each step moves the waiting count the same way for every row it changes", arguments: EventTransition.all)
    func waitingDelta(transition: EventTransition) {
        #expect(Set(transition.from.map(\.isWaiting)).count == 1, "\(transition) mixes waiting and other states")
        let expected = (transition.to.isWaiting ? 1 : 0) - (transition.from[0].isWaiting ? 1 : 0)
        #expect(transition.waitingDelta == expected)
        // Ending a waiting event frees its place; queuing a held or finished one takes one.
        switch transition {
        case .send, .fail, .expireAttempt, .failWithConnection, .expireOverdue, .supersede, .hold: #expect(transition.waitingDelta == -1)
        case .release, .retryByOperator: #expect(transition.waitingDelta == 1)
        default: #expect(transition.waitingDelta == 0)
        }
    }

    @Test("The generated statement sets the new state and changes only rows in a state it starts from")
    func generatedSQL() {
        let sql = EventTransition.retryByOperator.sql(where: "seq = :seq", returning: true)
        #expect(sql.contains("SET state = 'queued', nextAttemptAt = :now"))
        #expect(sql.contains("WHERE (seq = :seq) AND (+state = 'failed' OR +state = 'expired')"))
        #expect(sql.hasSuffix("RETURNING *"))
        let lease = EventTransition.lease.sql(where: nil, indexedBy: "event_due", returning: false)
        #expect(lease.hasPrefix("UPDATE event INDEXED BY event_due\nSET state = 'sending'"))
        #expect(lease.hasSuffix("WHERE +state = 'queued'"))
    }

    @Test("A step applied to an event in a state it does not start from writes nothing", arguments: EventTransition.all)
    func illegalStepWritesNothing(transition: EventTransition) async throws {
        try await withTestOutbox(clock: ManualClock()) { outbox in
            let stored = try await submitEvent(outbox, .messageRead, "e")
            // Every state the step does not start from, set directly on the row.
            for state in EventState.allCases where !transition.from.contains(state) {
                let (changed, after) = try await outbox.writer.perform { db -> (Int, EventState?) in
                    try db.execute(sql: "UPDATE event SET state = ? WHERE seq = ?", arguments: [state.rawValue, stored.seq])
                    var waitingChange = 0
                    let changed = try transition.apply(
                        where: "seq = :seq",
                        arguments: ["seq": stored.seq, "now": 1, "at": 1, "code": "c", "message": "m", "id": "i", "absoluteTime": "t", "processingStatus": nil,
                                    "supersededBy": "x", "deadline": 1, "token": "t", "hash": "h"],
                        in: db, waitingChange: &waitingChange
                    ).changed
                    #expect(waitingChange == 0)
                    let after = try String.fetchOne(db, sql: "SELECT state FROM event WHERE seq = ?", arguments: [stored.seq]).flatMap(EventState.init)
                    return (changed, after)
                }
                #expect(changed == 0, "\(transition) from \(state)")
                #expect(after == state, "\(transition) from \(state)")
            }
        }
    }
}
