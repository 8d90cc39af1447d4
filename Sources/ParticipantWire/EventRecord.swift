#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An outbox item (an event or a message) as the outbox holds it, as `POST /v1/events`,
/// `POST /v1/messages` and `GET /v1/events/{clientToken}` return it.
///
/// The connection token is never part of a record: it is a credential.
public struct EventRecord: Codable, Sendable, Equatable {
    public var clientToken: String
    public var contentType: String
    public var content: String?
    public var state: EventState
    /// How many requests were made to the service for this event.
    public var attempts: Int
    public var acceptedAt: Date
    public var updatedAt: Date
    /// When the sender will try next (waiting states only).
    public var nextAttemptAt: Date?
    /// After this time the event is not sent any more: it ends `expired`.
    public var deadline: Date
    public var lastError: ErrorBody?
    /// The service's `Id`, once sent.
    public var id: String?
    /// The service's `AbsoluteTime`, once sent (ISO 8601 as the service wrote it).
    public var absoluteTime: String?
    /// The ClientToken of the event that replaced this one (state `superseded`).
    public var supersededBy: String?
    /// The first 16 hex digits of the SHA-256 of the connection token: groups events by
    /// connection without showing the credential.
    public var connectionHash: String?
    /// The Connect instance it is for, by its configured name (`nil` from a daemon that predates instances).
    public var instance: String?
    /// `event` (SendEvent) or `message` (SendMessage); `nil` from a daemon that predates messages.
    public var kind: ItemKind?
    /// A sent message's `MessageMetadata.MessageProcessingStatus` (`PROCESSING`, `FAILED`,
    /// `REJECTED`): a 200 says the service took the message, not that the customer was shown it.
    public var processingStatus: String?
    /// The user whose program submitted it; `nil` when not known (stored before owners were kept,
    /// or sent by an anonymous client).
    public var owner: ItemOwner?

    public init(
        clientToken: String, contentType: String, content: String?, state: EventState, attempts: Int,
        acceptedAt: Date, updatedAt: Date, nextAttemptAt: Date?, deadline: Date, lastError: ErrorBody?,
        id: String?, absoluteTime: String?, supersededBy: String?, connectionHash: String? = nil, instance: String? = nil,
        kind: ItemKind? = nil, processingStatus: String? = nil, owner: ItemOwner? = nil
    ) {
        self.owner = owner
        self.kind = kind
        self.processingStatus = processingStatus
        self.instance = instance
        self.connectionHash = connectionHash
        self.clientToken = clientToken
        self.contentType = contentType
        self.content = content
        self.state = state
        self.attempts = attempts
        self.acceptedAt = acceptedAt
        self.updatedAt = updatedAt
        self.nextAttemptAt = nextAttemptAt
        self.deadline = deadline
        self.lastError = lastError
        self.id = id
        self.absoluteTime = absoluteTime
        self.supersededBy = supersededBy
    }
}

/// The user who owns an item: its ClientToken is in that user's namespace, and only that user
/// (or an administrator) sees and changes it.
public struct ItemOwner: Codable, Sendable, Equatable {
    public var uid: UInt32
    /// The user's name; `nil` for a uid with no account.
    public var user: String?

    public init(uid: UInt32, user: String?) {
        self.uid = uid
        self.user = user
    }

    /// As a table shows it: the name, or `uid N`.
    public var displayName: String { user ?? "uid \(uid)" }
}

/// The answer to `POST /v1/events`: the stored record, and warnings about the submission.
public struct SubmitResponse: Codable, Sendable, Equatable {
    public var event: EventRecord
    /// Whether this submission stored the event (`false`: the same ClientToken was already stored).
    public var created: Bool
    public var warnings: [String]

    public init(event: EventRecord, created: Bool, warnings: [String]) {
        self.event = event
        self.created = created
        self.warnings = warnings
    }
}

/// SendEvent's output, as the AWS CLI prints it.
public struct SendEventOutput: Codable, Sendable, Equatable {
    public var id: String
    public var absoluteTime: String

    enum CodingKeys: String, CodingKey {
        case id = "Id"
        case absoluteTime = "AbsoluteTime"
    }

    public init(id: String, absoluteTime: String) {
        self.id = id
        self.absoluteTime = absoluteTime
    }
}

/// SendMessage's answer as the service gives it: SendEvent's, and how the message is processed.
public struct SendMessageOutput: Codable, Sendable, Equatable {
    public struct Metadata: Codable, Sendable, Equatable {
        /// `PROCESSING`, `FAILED` or `REJECTED`: a 200 says the service took the message, not that
        /// the customer was shown it.
        public var messageProcessingStatus: String?

        enum CodingKeys: String, CodingKey {
            case messageProcessingStatus = "MessageProcessingStatus"
        }

        public init(messageProcessingStatus: String?) {
            self.messageProcessingStatus = messageProcessingStatus
        }
    }

    public var id: String
    public var absoluteTime: String
    public var messageMetadata: Metadata?

    enum CodingKeys: String, CodingKey {
        case id = "Id"
        case absoluteTime = "AbsoluteTime"
        case messageMetadata = "MessageMetadata"
    }

    public init(id: String, absoluteTime: String, messageMetadata: Metadata?) {
        self.id = id
        self.absoluteTime = absoluteTime
        self.messageMetadata = messageMetadata
    }
}

/// `POST /v1/events/batch`'s answer: one result per submitted event, in order.
public struct BatchSubmitResponse: Codable, Sendable, Equatable {
    public var results: [BatchResult]

    public init(results: [BatchResult]) {
        self.results = results
    }
}

/// What `POST /v1/events` would have answered one event of a batch: its status and its body.
public struct BatchResult: Codable, Sendable, Equatable {
    public var status: Int
    public var body: Body

    /// A stored event (202 new, 200 the same ClientToken again) or an error.
    public enum Body: Codable, Sendable, Equatable {
        case event(SubmitResponse)
        case error(ErrorBody)

        public init(from decoder: any Decoder) throws {
            // An error body has a code; an event's body has an event.
            if let error = try? ErrorBody(from: decoder) {
                self = .error(error)
            } else {
                self = .event(try SubmitResponse(from: decoder))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .event(let response): try response.encode(to: encoder)
            case .error(let error): try error.encode(to: encoder)
            }
        }
    }

    public var succeeded: Bool { (200..<300).contains(status) }

    public init(status: Int, body: Body) {
        self.status = status
        self.body = body
    }
}
