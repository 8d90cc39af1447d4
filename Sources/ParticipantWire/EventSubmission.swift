/// The body of `POST /v1/events`: SendEvent's parameters with camelCase names.
///
/// Every field is optional here so that the daemon, not the JSON decoder, names a missing field.
public struct EventSubmission: Codable, Sendable, Equatable {
    public var contentType: String?
    public var content: String?
    public var clientToken: String?
    public var connectionToken: String?

    public init(contentType: String?, content: String? = nil, clientToken: String? = nil, connectionToken: String?) {
        self.contentType = contentType
        self.content = content
        self.clientToken = clientToken
        self.connectionToken = connectionToken
    }
}
