import Foundation
import Hummingbird
import Logging
import NIOCore
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// The socket API's request context: Hummingbird's basic one, plus the peer of its connection.
public struct DaemonRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// `nil` for an anonymous peer (a client off loopback under `aws.allowNonLoopback`).
    public var peer: PeerCredentials? { connectionPeer?.credentials }
    /// The peer's uid as the outbox keeps it (``Outbox/unknownPeer`` for an anonymous one).
    var peerID: Int64 { ConnectionPeer.outboxID(of: connectionPeer) }
    let connectionPeer: ConnectionPeer?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        connectionPeer = ConnectionPeer.current
    }
}
