import ParticipantOutbox
import ParticipantWire

/// One SendEvent call, as the sender makes it.
public struct SendEventRequest: Sendable, Equatable {
    public var contentType: String
    public var content: String?
    public var clientToken: String
    /// Sent as the `X-Amz-Bearer` header; never logged.
    public var connectionToken: String

    public init(contentType: String, content: String?, clientToken: String, connectionToken: String) {
        self.contentType = contentType
        self.content = content
        self.clientToken = clientToken
        self.connectionToken = connectionToken
    }
}

/// How a SendEvent call ended, sorted by ``ServiceAnswer/isRetryable(status:)``; what it means
/// for the event and its connection is ``ServiceAnswer/meaning(of:for:)``.
public enum SendEventResult: Sendable, Equatable {
    /// 200: the service has the event.
    case accepted(id: String, absoluteTime: String)
    /// The service refused the event for good (400 ValidationException, 403 AccessDeniedException,
    /// 409 ConflictException, any other 4xx): never retried.
    case rejected(ErrorBody, status: Int)
    /// Worth another try later: 429, 5xx (`status`), connection refused or reset, timeouts (`status` nil).
    case transient(ErrorBody, status: Int?)
}

/// The Amazon Connect Participant Service, as far as this daemon uses it.
public protocol ParticipantService: Sendable {
    func sendEvent(_ request: SendEventRequest) async -> SendEventResult
}
