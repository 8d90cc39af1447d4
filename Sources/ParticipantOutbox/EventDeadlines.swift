import ParticipantWire

/// How long after acceptance each kind of item may still be sent.
///
/// A typing indicator that arrives 30 seconds late is wrong, a read receipt or a message a day
/// late is still right; past its deadline an item ends `expired` and is never sent.
public struct EventDeadlines: Sendable, Equatable {
    public var typing: Duration = .seconds(10)
    public var connectionAcknowledged: Duration = .seconds(86_400)
    public var messageDelivered: Duration = .seconds(86_400)
    public var messageRead: Duration = .seconds(86_400)
    /// A message (SendMessage): as long as a connection token lives.
    public var message: Duration = .seconds(86_400)
    /// A disconnect (DisconnectParticipant): it waits for everything before it in its chat.
    public var disconnect: Duration = .seconds(86_400)

    public init() {}

    public func deadline(for contentType: EventContentType) -> Duration {
        switch contentType {
        case .typing: typing
        case .connectionAcknowledged: connectionAcknowledged
        case .messageDelivered: messageDelivered
        case .messageRead: messageRead
        }
    }

    public func deadline(for contentType: ItemContentType) -> Duration {
        switch contentType {
        case .event(let type): deadline(for: type)
        case .message: message
        case .disconnect: disconnect
        }
    }
}

extension Duration {
    package var timeInterval: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
