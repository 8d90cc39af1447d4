/// The body of `POST /v1/messages`: SendMessage's parameters with camelCase names.
///
/// Every field is optional here so that the daemon, not the JSON decoder, names a missing field.
public struct MessageSubmission: Codable, Sendable, Equatable {
    public var contentType: String?
    public var content: String?
    public var clientToken: String?
    public var connectionToken: String?
    /// The Connect instance it is for, by its configured name; `nil`: ``InstanceName/defaultName``.
    public var instance: String?
    /// In place of `connectionToken`: the participant's token; the daemon then creates and renews
    /// the connection (CreateParticipantConnection) itself.
    public var participantToken: String?
    /// With `participantToken`: the connection is created with `ConnectParticipant` so
    /// (`nil`: `connections.connectParticipant`).
    public var connectParticipant: Bool?

    public init(contentType: String?, content: String?, clientToken: String? = nil, connectionToken: String?, instance: String? = nil,
                participantToken: String? = nil, connectParticipant: Bool? = nil) {
        self.participantToken = participantToken
        self.connectParticipant = connectParticipant
        self.contentType = contentType
        self.content = content
        self.clientToken = clientToken
        self.connectionToken = connectionToken
        self.instance = instance
    }
}
