import Foundation
import Hummingbird
import Logging
import NIOCore
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// Who is at the other end of a Unix socket connection: `SO_PEERCRED`, read once when the
/// connection opens. (A TCP connection, `aws.listen`, has none.)
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    /// Reads the credentials of `channel`'s peer; `nil` when it is not a Unix socket.
    static func read(_ channel: any Channel) -> EventLoopFuture<PeerCredentials?> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        // struct ucred (pid, uid, gid): Swift's Glibc does not import it (it needs _GNU_SOURCE);
        // this struct has its layout.
        let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(level: .socket, name: .init(rawValue: SO_PEERCRED))
        return future.map { Optional($0) }.recover { _ in nil }
    }

    /// For log lines of changes: who made them.
    static func metadata(_ context: DaemonRequestContext) -> Logger.Metadata {
        guard let peer = context.peer else { return [:] }
        return ["peer.uid": "\(peer.uid)", "peer.pid": "\(peer.pid)"]
    }
}
