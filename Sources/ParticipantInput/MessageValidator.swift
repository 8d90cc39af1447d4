import ParticipantWire

/// A submission that passed every rule of SendMessage's input: ready to be stored.
public struct ValidatedMessage: Sendable, Equatable {
    public var contentType: MessageContentType
    public var content: String
    /// `nil` when the client sent none: the outbox generates one, once.
    public var clientToken: String?
    /// The connection token it is sent with; empty when the chat is named by a participant token.
    public var connectionToken: String
    /// The participant's token, when it names the chat in place of a connection token.
    public var participantToken: String? = nil
    /// With `participantToken`: CreateParticipantConnection's `ConnectParticipant` (`nil`: the default).
    public var connectParticipant: Bool? = nil
    /// The Connect instance it is for (a well-formed name; whether it is configured is the API's question).
    public var instance: String
}

/// The input rules of SendMessage, from botocore's service model and the API reference: a content
/// type the service takes, content of 1 to that type's length, the ClientToken and connection
/// token as for events.
public enum MessageValidator {
    public static func validate(_ submission: MessageSubmission) throws(ValidationError) -> ValidatedMessage {
        guard let rawContentType = submission.contentType else {
            throw ValidationError(field: "contentType", rule: "is required")
        }
        guard let contentType = MessageContentType(rawValue: rawContentType) else {
            let allowed = MessageContentType.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError(field: "contentType", rule: "must be one of \(allowed) for a message")
        }
        guard let content = submission.content else {
            throw ValidationError(field: "content", rule: "is required for a message")
        }
        do {
            try FieldRules.checkLength(content, field: "content", min: 1, max: contentType.maxContentLength)
        } catch {
            throw ValidationError(field: error.field, rule: error.rule + " for \(contentType.rawValue)")
        }
        try FieldRules.checkStorable(content, field: "content")
        try FieldRules.checkClientToken(submission.clientToken)
        let (connectionToken, participantToken, connectParticipant) = try FieldRules.credentialFields(
            connectionToken: submission.connectionToken, participantToken: submission.participantToken, connectParticipant: submission.connectParticipant
        )
        let instance = try FieldRules.instance(submission.instance)
        return ValidatedMessage(
            contentType: contentType, content: content, clientToken: submission.clientToken,
            connectionToken: connectionToken, participantToken: participantToken, connectParticipant: connectParticipant, instance: instance
        )
    }
}
