/// A SendMessage content type, with the length the service allows its content.
public enum MessageContentType: String, CaseIterable, Codable, Sendable {
    case plainText = "text/plain"
    case markdown = "text/markdown"
    case json = "application/json"
    case interactiveResponse = "application/vnd.amazonaws.connect.message.interactive.response"

    /// The content's length at most, in characters (the API reference's lengths; the model's
    /// shape alone would allow 16,384 for every type).
    public var maxContentLength: Int {
        switch self {
        case .plainText, .markdown: 1_024
        case .json: 12_000
        case .interactiveResponse: 12_288
        }
    }
}
