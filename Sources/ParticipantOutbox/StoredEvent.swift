import Foundation
import GRDB
import ParticipantInput
import ParticipantWire

/// One row of the outbox: an event and everything known about its delivery.
public struct StoredEvent: Sendable, Equatable, FetchableRecord {
    public var seq: Int64
    public var clientToken: String
    /// An event's or a message's; it says the item's kind.
    public var contentType: ItemContentType
    /// `nil` for a disconnect, and once the item ended `sent` or `superseded` (its digest is kept).
    public var content: String?
    /// `nil` only once the row is final and the credential has been erased.
    public var connectionToken: String?
    public var connectionHash: String
    public var state: EventState
    public var attempts: Int
    public var acceptedAt: Date
    public var updatedAt: Date
    public var nextAttemptAt: Date?
    public var deadline: Date
    public var lastError: ErrorBody?
    public var serviceId: String?
    public var absoluteTime: String?
    public var supersededBy: String?
    /// A sent message's `MessageMetadata.MessageProcessingStatus`, as the service said it.
    public var processingStatus: String?
    /// The Connect instance it is for, by its configured name.
    public var instance: String = InstanceName.defaultName
    /// The chat is named by a participant token: the connection token comes from the
    /// participant's connection (``ParticipantConnection``), which the sender creates and renews.
    public var viaParticipant = false
    /// The uid of the user whose program submitted it (``Outbox/unknownPeer``: not known).
    public var peer: Int64 = Outbox.unknownPeer
    /// ``ContentDigest`` of the content as accepted: what deduplication compares once the content is gone.
    public var contentDigest: Data?

    enum Columns: String, ColumnExpression {
        case seq, clientToken, contentType, content, connectionToken, connectionHash, state, attempts
        case acceptedAt, updatedAt, nextAttemptAt, deadline, lastErrorCode, lastErrorMessage
        case serviceId, absoluteTime, supersededBy, instance, processingStatus, viaParticipant, peer, digest
    }

}

extension StoredEvent {
    public init(row: Row) throws {
        seq = row[Columns.seq]
        clientToken = row[Columns.clientToken]
        contentType = try Self.decode(row[Columns.contentType], as: "content type", of: seq)
        content = row[Columns.content]
        connectionToken = row[Columns.connectionToken]
        connectionHash = row[Columns.connectionHash]
        state = try Self.decode(row[Columns.state], as: "state", of: seq)
        attempts = row[Columns.attempts]
        acceptedAt = Date(millisecondsSince1970: row[Columns.acceptedAt])
        updatedAt = Date(millisecondsSince1970: row[Columns.updatedAt])
        nextAttemptAt = (row[Columns.nextAttemptAt] as Int64?).map(Date.init(millisecondsSince1970:))
        deadline = Date(millisecondsSince1970: row[Columns.deadline])
        if let code: String = row[Columns.lastErrorCode] {
            lastError = ErrorBody(code: code, message: row[Columns.lastErrorMessage] ?? "")
        }
        serviceId = row[Columns.serviceId]
        absoluteTime = row[Columns.absoluteTime]
        supersededBy = row[Columns.supersededBy]
        instance = row[Columns.instance]
        processingStatus = row[Columns.processingStatus]
        viaParticipant = row[Columns.viaParticipant]
        peer = row[Columns.peer] ?? Outbox.unknownPeer
        contentDigest = row[Columns.digest]
    }
}

extension StoredEvent {
    /// A stored name as its enum; an unknown one means the file was changed behind the daemon's back.
    private static func decode<Value: RawRepresentable<String>>(_ raw: String, as what: String, of seq: Int64) throws -> Value {
        guard let value = Value(rawValue: raw) else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "event \(seq) has an unknown \(what) \(raw)")
        }
        return value
    }

    /// A row as a submission stores it: queued, or superseded on arrival (by `supersededBy`), in
    /// which case it keeps neither content nor connection token and is never due. Times as the outbox gives them back.
    package init(accepted event: ValidatedEvent, seq: Int64, clientToken: String, connectionHash: String,
         at now: Date, deadline: Date, supersededBy: String?, due: Date? = nil) {
        self.init(accepted: .event(event), seq: seq, clientToken: clientToken, connectionHash: connectionHash,
                  at: now, deadline: deadline, supersededBy: supersededBy, due: due)
    }

    package init(accepted event: ValidatedItem, seq: Int64, clientToken: String, connectionHash: String,
         at now: Date, deadline: Date, supersededBy: String?, due: Date? = nil, digest: Data? = nil) {
        let redundant = supersededBy != nil
        let now = now.truncatedToMilliseconds
        self.init(
            seq: seq, clientToken: clientToken, contentType: event.contentType,
            content: redundant ? nil : event.content, connectionToken: redundant ? nil : event.connectionToken,
            connectionHash: connectionHash, state: redundant ? .superseded : .queued, attempts: 0,
            acceptedAt: now, updatedAt: now, nextAttemptAt: redundant ? nil : (due?.truncatedToMilliseconds ?? now),
            deadline: deadline.truncatedToMilliseconds, lastError: nil, serviceId: nil, absoluteTime: nil,
            supersededBy: supersededBy, processingStatus: nil, instance: event.instance
        )
        if case .participant = event.credential {
            connectionToken = nil
            viaParticipant = true
        }
        contentDigest = digest
    }

    /// Whether `content` is what this item was accepted with: by its digest, which a finished
    /// item keeps in place of its content.
    package func hasContent(_ content: String?) -> Bool {
        contentDigest.map { $0 == ContentDigest.of(content) } ?? (self.content == content)
    }

    /// The record as the socket API shows it: everything but the connection token.
    public var record: EventRecord {
        EventRecord(
            clientToken: clientToken, contentType: contentType.rawValue, content: content, state: state,
            attempts: attempts, acceptedAt: acceptedAt, updatedAt: updatedAt,
            nextAttemptAt: state.isFinal ? nil : nextAttemptAt, deadline: deadline, lastError: lastError,
            id: serviceId, absoluteTime: absoluteTime, supersededBy: supersededBy, connectionHash: connectionHash,
            instance: instance, kind: contentType.kind, processingStatus: processingStatus,
            owner: UInt32(exactly: peer).map { ItemOwner(uid: $0, user: PeerName.user(of: peer)) }
        )
    }
}

extension EventState {
    /// The state as an SQL string literal: every state the outbox's SQL names comes from here.
    package var sql: String { "'\(rawValue)'" }
}
