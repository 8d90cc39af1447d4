/// What an outbox item becomes at the service.
public enum ItemKind: String, Codable, Sendable, CaseIterable {
    /// SendEvent: typing, receipts.
    case event
    /// SendMessage.
    case message

    /// For messages to people: "an event", "a message".
    public var withArticle: String {
        switch self {
        case .event: "an event"
        case .message: "a message"
        }
    }
}

/// An outbox item's content type: an event's or a message's. The two sets do not overlap, so the
/// content type alone says the kind, and the outbox stores it as one string.
public enum ItemContentType: RawRepresentable, Hashable, Sendable, CaseIterable {
    case event(EventContentType)
    case message(MessageContentType)

    public static var allCases: [ItemContentType] {
        EventContentType.allCases.map(Self.event) + MessageContentType.allCases.map(Self.message)
    }

    /// Every priority an item may have, lowest (first sent) first.
    public static let priorities: [Int] = Set(allCases.map(\.deliveryPriority)).sorted()

    public init?(rawValue: String) {
        if let event = EventContentType(rawValue: rawValue) {
            self = .event(event)
        } else if let message = MessageContentType(rawValue: rawValue) {
            self = .message(message)
        } else {
            return nil
        }
    }

    public var rawValue: String {
        switch self {
        case .event(let type): type.rawValue
        case .message(let type): type.rawValue
        }
    }

    public var kind: ItemKind {
        switch self {
        case .event: .event
        case .message: .message
        }
    }

    /// The event's content type; `nil` for a message.
    public var eventType: EventContentType? {
        if case .event(let type) = self { type } else { nil }
    }

    /// A read or delivered receipt.
    public var isReceipt: Bool { eventType?.isReceipt ?? false }

    /// The order in which waiting items are sent when the quota is the bottleneck, lowest first:
    /// a message before every event, then the events' own order.
    public var deliveryPriority: Int {
        switch self {
        case .event(let type): type.deliveryPriority
        case .message: -1
        }
    }

    /// For logs and metrics: the event's last dotted component (`typing`, `message.read`), or
    /// `message` for every message.
    public var shortName: String {
        switch self {
        case .event(let type): type.shortName
        case .message: "message"
        }
    }
}
