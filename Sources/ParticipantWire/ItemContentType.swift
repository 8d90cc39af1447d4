/// What an outbox item becomes at the service.
public enum ItemKind: String, Codable, Sendable, CaseIterable {
    /// SendEvent: typing, receipts.
    case event
    /// SendMessage.
    case message
    /// DisconnectParticipant: the participant leaves the chat; sent after everything before it.
    case disconnect

    /// For messages to people: "an event", "a message", "a disconnect".
    public var withArticle: String {
        switch self {
        case .event: "an event"
        case .message: "a message"
        case .disconnect: "a disconnect"
        }
    }

    /// The outbox priorities of this kind's items (``ItemContentType/deliveryPriority``): the
    /// sender leases each quota's items by their range.
    public var priorities: ClosedRange<Int> {
        switch self {
        case .message: -1 ... -1
        case .event: 0...3
        case .disconnect: 10...10
        }
    }
}

/// An outbox item's content type: an event's, a message's, or the disconnect's. The sets do not
/// overlap, so the content type alone says the kind, and the outbox stores it as one string.
public enum ItemContentType: RawRepresentable, Hashable, Sendable, CaseIterable {
    case event(EventContentType)
    case message(MessageContentType)
    /// DisconnectParticipant has no content type; the outbox stores this name in its place.
    case disconnect

    /// What the outbox stores for a disconnect: no content type of the service's can be it.
    public static let disconnectName = "DisconnectParticipant"

    public static var allCases: [ItemContentType] {
        EventContentType.allCases.map(Self.event) + MessageContentType.allCases.map(Self.message) + [.disconnect]
    }

    /// Every priority an item may have, lowest (first sent) first.
    public static let priorities: [Int] = Set(allCases.map(\.deliveryPriority)).sorted()

    public init?(rawValue: String) {
        if let event = EventContentType(rawValue: rawValue) {
            self = .event(event)
        } else if let message = MessageContentType(rawValue: rawValue) {
            self = .message(message)
        } else if rawValue == Self.disconnectName {
            self = .disconnect
        } else {
            return nil
        }
    }

    public var rawValue: String {
        switch self {
        case .event(let type): type.rawValue
        case .message(let type): type.rawValue
        case .disconnect: Self.disconnectName
        }
    }

    public var kind: ItemKind {
        switch self {
        case .event: .event
        case .message: .message
        case .disconnect: .disconnect
        }
    }

    /// The event's content type; `nil` for a message or a disconnect.
    public var eventType: EventContentType? {
        if case .event(let type) = self { type } else { nil }
    }

    /// A read or delivered receipt.
    public var isReceipt: Bool { eventType?.isReceipt ?? false }

    /// The order in which waiting items are sent when the quota is the bottleneck, lowest first:
    /// a message before every event, then the events' own order. A disconnect spends a quota of
    /// its own (its priority only sets it apart).
    public var deliveryPriority: Int {
        switch self {
        case .event(let type): type.deliveryPriority
        case .message: ItemKind.message.priorities.lowerBound
        case .disconnect: ItemKind.disconnect.priorities.lowerBound
        }
    }

    /// For logs and metrics: the event's last dotted component (`typing`, `message.read`),
    /// `message` for every message, `disconnect`.
    public var shortName: String {
        switch self {
        case .event(let type): type.shortName
        case .message: "message"
        case .disconnect: "disconnect"
        }
    }
}
