import Foundation
import ParticipantOutbox
import ParticipantWire

/// The Participant Service operations the sender calls for an outbox item: each a `POST` with
/// the connection token in `X-Amz-Bearer` and `{"ContentType", "Content", "ClientToken"}` as body
/// (DisconnectParticipant: `{"ClientToken"}` alone).
public enum ServiceOperation: String, Sendable, CaseIterable {
    case sendEvent = "SendEvent"
    case sendMessage = "SendMessage"
    case disconnectParticipant = "DisconnectParticipant"

    /// The operation an outbox item of `kind` becomes.
    public init(for kind: ItemKind) {
        switch kind {
        case .event: self = .sendEvent
        case .message: self = .sendMessage
        case .disconnect: self = .disconnectParticipant
        }
    }

    /// The operation's path at the service's endpoint.
    public var path: String {
        switch self {
        case .sendEvent: "/participant/event"
        case .sendMessage: "/participant/message"
        case .disconnectParticipant: "/participant/disconnect"
        }
    }
}

/// One call the sender makes for one outbox item.
public struct ServiceRequest: Sendable, Equatable {
    public var operation: ServiceOperation
    public var contentType: String
    public var content: String?
    public var clientToken: String
    /// Sent as the `X-Amz-Bearer` header; never logged.
    public var connectionToken: String

    public init(operation: ServiceOperation, contentType: String, content: String?, clientToken: String, connectionToken: String) {
        self.operation = operation
        self.contentType = contentType
        self.content = content
        self.clientToken = clientToken
        self.connectionToken = connectionToken
    }
}

/// How a call ended, sorted by ``ServiceAnswer/isRetryable(status:)``; what it means
/// for the event and its connection is ``ServiceAnswer/meaning(of:for:)``.
public enum ServiceCallResult: Sendable, Equatable {
    /// 200: the service has the item (DisconnectParticipant's answer is `{}`: `id` and
    /// `absoluteTime` are empty). A message's answer says how the service processes it
    /// (`MessageMetadata.MessageProcessingStatus`: `PROCESSING`, `FAILED`, `REJECTED`).
    case accepted(id: String, absoluteTime: String, processingStatus: String? = nil)
    /// The service refused the event for good (400 ValidationException, 403 AccessDeniedException,
    /// 409 ConflictException, any other 4xx): never retried.
    case rejected(ErrorBody, status: Int)
    /// Worth another try later: 429, 5xx (`status`), connection refused or reset, timeouts (`status` nil).
    case transient(ErrorBody, status: Int?)
}

/// How a CreateParticipantConnection call ended.
public enum ConnectionCallResult: Sendable, Equatable {
    /// 200: `ConnectionCredentials {ConnectionToken, Expiry}`.
    case created(connectionToken: String, expiry: Date)
    /// Refused for good (403: the participant token is no longer valid, the chat ended; other 4xx).
    case rejected(ErrorBody, status: Int)
    /// Worth another try later: 429, 5xx (`status`), no answer (`status` nil).
    case transient(ErrorBody, status: Int?)
}

/// The Amazon Connect Participant Service, as far as this daemon uses it.
public protocol ParticipantService: Sendable {
    /// Makes the call and sorts its answer; never throws: a failure is an answer too.
    func send(_ request: ServiceRequest) async -> ServiceCallResult
    /// CreateParticipantConnection with `Type: [CONNECTION_CREDENTIALS]`: a connection token for
    /// the participant whose token this is (sent as `X-Amz-Bearer`; never logged).
    func createConnection(participantToken: String, connectParticipant: Bool) async -> ConnectionCallResult
}
