/// The four content types SendEvent accepts (botocore's `connectparticipant` model, 2018-09-07).
public enum EventContentType: String, CaseIterable, Codable, Sendable {
    case typing = "application/vnd.amazonaws.connect.event.typing"
    /// No longer maintained by the service since 2024-12-31; accepted with a warning.
    case connectionAcknowledged = "application/vnd.amazonaws.connect.event.connection.acknowledged"
    case messageDelivered = "application/vnd.amazonaws.connect.event.message.delivered"
    case messageRead = "application/vnd.amazonaws.connect.event.message.read"

    /// Receipts carry `{"messageId": "..."}` as their content.
    public var isReceipt: Bool {
        self == .messageDelivered || self == .messageRead
    }

    public var isDeprecated: Bool {
        self == .connectionAcknowledged
    }

    /// The order in which waiting events are sent when the quota is the bottleneck, lowest
    /// first: a read receipt says the most, a typing indicator the least.
    public var deliveryPriority: Int {
        switch self {
        case .messageRead: 0
        case .messageDelivered: 1
        case .connectionAcknowledged: 2
        case .typing: 3
        }
    }

    /// The last dotted component, for logs and metrics: `typing`, `message.read`, ...
    public var shortName: String {
        String(rawValue.dropFirst("application/vnd.amazonaws.connect.event.".count))
    }
}
