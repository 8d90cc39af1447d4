/// The body of `POST /v1/disconnect`: DisconnectParticipant's parameters with camelCase names.
///
/// Every field is optional here so that the daemon, not the JSON decoder, names a missing field.
public struct DisconnectSubmission: Codable, Sendable, Equatable {
    public var clientToken: String?
    public var connectionToken: String?
    /// The Connect instance it is for, by its configured name; `nil`: ``InstanceName/defaultName``.
    public var instance: String?

    public init(clientToken: String? = nil, connectionToken: String?, instance: String? = nil) {
        self.clientToken = clientToken
        self.connectionToken = connectionToken
        self.instance = instance
    }
}
