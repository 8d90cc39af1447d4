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
    /// `nil` on TCP (`aws.listen`).
    public var peer: PeerCredentials? { connectionPeer?.credentials }
    let connectionPeer: ConnectionPeer?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        connectionPeer = ConnectionPeer.current
    }
}
