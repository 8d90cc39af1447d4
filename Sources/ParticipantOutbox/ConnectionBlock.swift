import Foundation
import GRDB
import ParticipantWire

/// What the service said can never succeed for a connection token, remembered for a while.
///
/// A 403 AccessDeniedException means the token expired or the chat ended: no event of that
/// connection can succeed. A 409 ConflictException on a receipt means the chat refuses receipts
/// (more than two participants, a supervisor barged in): typing still works, receipts never will.
public struct ConnectionBlock: Sendable, Equatable {
    public enum Scope: String, Sendable {
        /// Every event of the connection (403).
        case all
        /// Receipts only (409 on a receipt).
        case receipts
        /// Everything: the chat's participant was disconnected (`error.message` holds the
        /// disconnect's ClientToken). Set when the disconnect is stored, not by the service.
        case disconnected
    }

    public var scope: Scope
    /// The service's answer that caused it.
    public var error: ErrorBody
    public var blockedAt: Date

    /// Whether an item of `contentType` falls under this block (a message is no receipt).
    public func covers(_ contentType: ItemContentType) -> Bool {
        scope != .receipts || contentType.isReceipt
    }

    /// The SQL condition on `event.contentType` for the events this scope covers.
    var contentTypeCondition: String {
        switch scope {
        case .all, .disconnected: "1"
        case .receipts:
            "contentType IN ('\(EventContentType.messageDelivered.rawValue)', '\(EventContentType.messageRead.rawValue)')"
        }
    }
}
