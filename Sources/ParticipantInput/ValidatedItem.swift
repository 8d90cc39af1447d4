import ParticipantWire

/// A valid submission of any kind, as the outbox stores it: an event (SendEvent), a message
/// (SendMessage) or a disconnect (DisconnectParticipant). All share one ClientToken namespace and
/// one order per chat.
public enum ValidatedItem: Sendable, Equatable {
    case event(ValidatedEvent)
    case message(ValidatedMessage)
    case disconnect(ValidatedDisconnect)

    public var contentType: ItemContentType {
        switch self {
        case .event(let event): .event(event.contentType)
        case .message(let message): .message(message.contentType)
        case .disconnect: .disconnect
        }
    }

    public var kind: ItemKind { contentType.kind }

    public var content: String? {
        switch self {
        case .event(let event): event.content
        case .message(let message): message.content
        case .disconnect: nil
        }
    }

    /// `nil` when the client sent none: the outbox generates one, once.
    public var clientToken: String? {
        switch self {
        case .event(let event): event.clientToken
        case .message(let message): message.clientToken
        case .disconnect(let disconnect): disconnect.clientToken
        }
    }

    /// How the chat is named: its connection token, or the participant's token.
    public var credential: ChatCredential {
        let (connectionToken, participantToken, connect): (String, String?, Bool?) = switch self {
        case .event(let event): (event.connectionToken, event.participantToken, event.connectParticipant)
        case .message(let message): (message.connectionToken, message.participantToken, message.connectParticipant)
        case .disconnect(let disconnect): (disconnect.connectionToken, disconnect.participantToken, disconnect.connectParticipant)
        }
        return participantToken.map { .participant($0, connectParticipant: connect) } ?? .connection(connectionToken)
    }

    /// Empty when the chat is named by a participant token (``credential``).
    public var connectionToken: String {
        switch self {
        case .event(let event): event.connectionToken
        case .message(let message): message.connectionToken
        case .disconnect(let disconnect): disconnect.connectionToken
        }
    }

    public var instance: String {
        switch self {
        case .event(let event): event.instance
        case .message(let message): message.instance
        case .disconnect(let disconnect): disconnect.instance
        }
    }

    /// A receipt's `messageId`; `nil` for every other item.
    public var messageId: String? {
        if case .event(let event) = self { event.messageId } else { nil }
    }

    /// Things the client should know although the item was accepted.
    public var warnings: [String] {
        if case .event(let event) = self { event.warnings } else { [] }
    }
}
