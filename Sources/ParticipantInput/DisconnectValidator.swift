import ParticipantWire

/// A submission that passed every rule of DisconnectParticipant's input: ready to be stored.
public struct ValidatedDisconnect: Sendable, Equatable {
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

/// The input rules of DisconnectParticipant: a ClientToken and a connection token as for events.
public enum DisconnectValidator {
    public static func validate(_ submission: DisconnectSubmission) throws(ValidationError) -> ValidatedDisconnect {
        try FieldRules.checkClientToken(submission.clientToken)
        let (connectionToken, participantToken, connectParticipant) = try FieldRules.credentialFields(
            connectionToken: submission.connectionToken, participantToken: submission.participantToken, connectParticipant: submission.connectParticipant
        )
        let instance = try FieldRules.instance(submission.instance)
        return ValidatedDisconnect(
            clientToken: submission.clientToken, connectionToken: connectionToken, participantToken: participantToken,
            connectParticipant: connectParticipant, instance: instance
        )
    }
}
