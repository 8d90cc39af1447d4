import ParticipantWire

/// A submission that passed every rule of DisconnectParticipant's input: ready to be stored.
public struct ValidatedDisconnect: Sendable, Equatable {
    /// `nil` when the client sent none: the outbox generates one, once.
    public var clientToken: String?
    public var connectionToken: String
    /// The Connect instance it is for (a well-formed name; whether it is configured is the API's question).
    public var instance: String
}

/// The input rules of DisconnectParticipant: a ClientToken and a connection token as for events.
public enum DisconnectValidator {
    public static func validate(_ submission: DisconnectSubmission) throws(ValidationError) -> ValidatedDisconnect {
        try FieldRules.checkClientToken(submission.clientToken)
        let connectionToken = try FieldRules.connectionToken(submission.connectionToken)
        let instance = try FieldRules.instance(submission.instance)
        return ValidatedDisconnect(clientToken: submission.clientToken, connectionToken: connectionToken, instance: instance)
    }
}
