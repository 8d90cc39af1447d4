import Foundation
import GRDB
import ParticipantWire

/// A connection the daemon keeps for a chat named by a participant token.
public struct ParticipantConnection: Sendable, Equatable {
    /// The credential CreateParticipantConnection takes; never logged or shown.
    public var participantToken: String
    /// `ConnectParticipant` as a submission asked for it; `nil`: the configured default.
    public var connectParticipant: Bool?
    /// The connection token; `nil` before the first creation and after the service refused it.
    public var connectionToken: String?
    public var createdAt: Date?
    public var expiresAt: Date?
    /// Whether it was created with `ConnectParticipant: true`.
    public var connected: Bool
}

/// The participant connections: what the sender asks and records.
extension Outbox {
    /// Notes a submission of a chat named by `participantToken`, inside its transaction: the row
    /// is created (no connection yet) or kept, its last use now; a `ConnectParticipant: true` asked
    /// for sticks.
    static func noteParticipant(
        _ participantToken: String, connectParticipant: Bool?, connectionHash: String, instance: String, now: Int64, in db: Database
    ) throws {
        try db.cachedStatement(sql: """
            INSERT INTO participant_connection (instance, connectionHash, participantToken, connectParticipant, lastUsedAt)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (instance, connectionHash) DO UPDATE SET
                lastUsedAt = excluded.lastUsedAt,
                participantToken = excluded.participantToken,
                connectParticipant = CASE WHEN excluded.connectParticipant IS NULL THEN connectParticipant
                                          ELSE MAX(COALESCE(connectParticipant, 0), excluded.connectParticipant) END
            """).execute(arguments: [instance, connectionHash, participantToken, connectParticipant, now])
    }

    /// The connection of the chat `item` belongs to (an item of a chat named by a participant token).
    public func participantConnection(for item: StoredEvent) async throws -> ParticipantConnection? {
        try await database.read { db in
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM participant_connection WHERE instance = ? AND connectionHash = ?"),
                arguments: [item.instance, item.connectionHash]
            ).map { row in
                ParticipantConnection(
                    participantToken: row["participantToken"], connectParticipant: row["connectParticipant"],
                    connectionToken: row["connectionToken"],
                    createdAt: (row["createdAt"] as Int64?).map(Date.init(millisecondsSince1970:)),
                    expiresAt: (row["expiresAt"] as Int64?).map(Date.init(millisecondsSince1970:)),
                    connected: row["connected"]
                )
            }
        }
    }

    /// When the last connection of `instance` that is still kept was created; `nil`: none. As
    /// ``lastRequestStart(instance:priorities:)``, for CreateParticipantConnection's bucket.
    public func lastConnectionCreated(instance: String) async throws -> Date? {
        try await database.read { db in
            try Int64.fetchOne(db, sql: "SELECT MAX(createdAt) FROM participant_connection WHERE instance = ?", arguments: [instance])
                .map { Date(millisecondsSince1970: $0) }
        }
    }

    /// A new connection token for the chat of `item`, created now.
    public func recordConnection(for item: StoredEvent, connectionToken: String, expiresAt: Date, connected: Bool) async throws {
        let now = clock.now().millisecondsSince1970
        try await writer.perform { db in
            try db.cachedStatement(sql: """
                UPDATE participant_connection SET connectionToken = ?, createdAt = ?, expiresAt = ?, connected = MAX(connected, ?)
                WHERE instance = ? AND connectionHash = ?
                """).execute(arguments: [connectionToken, now, expiresAt.millisecondsSince1970, connected, item.instance, item.connectionHash])
        }
    }

    /// Forgets the connection token of the chat of `item` (the service refused it): the next
    /// attempt creates a new one.
    public func dropConnection(for item: StoredEvent) async throws {
        try await writer.perform { db in
            try db.cachedStatement(sql: """
                UPDATE participant_connection SET connectionToken = NULL, createdAt = NULL, expiresAt = NULL
                WHERE instance = ? AND connectionHash = ?
                """).execute(arguments: [item.instance, item.connectionHash])
        }
    }

    /// Deletes the participant connections of chats with nothing waiting or held whose last
    /// submission is older than `idle`: their tokens leave the disk, and a later submission with
    /// the same participant token starts a new connection. Returns how many.
    func deleteIdleConnections(lastUsedBefore cutoff: Int64, in db: Database) throws -> Int {
        try db.execute(sql: """
            DELETE FROM participant_connection AS pc
            WHERE pc.lastUsedAt < ?
              AND NOT EXISTS (SELECT 1 FROM event e INDEXED BY event_waiting_by_connection
                              WHERE e.instance = pc.instance AND e.connectionHash = pc.connectionHash AND e.\(Self.waiting))
              AND NOT EXISTS (SELECT 1 FROM event h INDEXED BY event_stuck
                              WHERE h.state = \(EventState.held.sql) AND h.instance = pc.instance AND h.connectionHash = pc.connectionHash)
            """, arguments: [cutoff])
        return db.changesCount
    }
}
