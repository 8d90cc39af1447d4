import Foundation
import Hummingbird
import Logging
import NIOCore
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// The peer of one connection: a Linux user, named by the kernel when the connection opened
/// (``identify(_:allowAnonymousRemote:)``), and its groups.
public final class ConnectionPeer: Sendable {
    /// The peer of the connection whose requests this task serves; `nil` for an anonymous peer
    /// (a non-loopback TCP client, only where `aws.allowNonLoopback` lets one in).
    @TaskLocal static var current: ConnectionPeer?

    public let credentials: PeerCredentials
    /// The groups the peer process has (`SO_PEERGROUPS`); `nil`: looked up from its user.
    private let kernelGroups: Set<UInt32>?
    private let groupCache = Mutex<Set<UInt32>?>(nil)

    /// The peer as the outbox keeps it: its uid, ``Outbox/unknownPeer`` for an anonymous one.
    static func outboxID(of peer: ConnectionPeer?) -> Int64 {
        peer.map { Int64($0.credentials.uid) } ?? Outbox.unknownPeer
    }

    init(_ credentials: PeerCredentials, groups: Set<UInt32>? = nil) {
        self.credentials = credentials
        self.kernelGroups = groups
    }

    /// The peer's primary group and supplementary groups: the process's own on the Unix socket,
    /// else its user's (getgrouplist(3)), looked up once for the connection.
    var groups: Set<UInt32> {
        if let kernelGroups { return kernelGroups.union([credentials.gid]) }
        if let groups = groupCache.withLock({ $0 }) { return groups }
        let groups = ResolvedAccess.groups(of: credentials)
        groupCache.withLock { $0 = groups }
        return groups
    }

    /// Who opened a connection.
    enum Identification: Sendable {
        case peer(ConnectionPeer)
        /// A non-loopback TCP client where those are let in unnamed.
        case anonymous
        /// Not named: the connection is closed at once.
        case refused(String)
    }

    /// Names the peer of `channel`: `SO_PEERCRED` and `SO_PEERGROUPS` on a Unix socket, the
    /// owner of the client's socket on loopback TCP. A peer that cannot be named is refused; so
    /// is a non-loopback TCP client unless `allowAnonymousRemote`.
    static func identify(_ channel: any Channel, allowAnonymousRemote: Bool) -> EventLoopFuture<Identification> {
        let loop = channel.eventLoop
        switch channel.localAddress {
        case .unixDomainSocket?:
            return PeerCredentials.read(channel).flatMap { credentials in
                PeerGroups.read(channel).map { groups in .peer(ConnectionPeer(credentials, groups: groups)) }
            }.recover { error in
                .refused("its credentials (SO_PEERCRED) could not be read: \(error)")
            }
        case let local?:
            guard let server = SocketDiagnostics.Endpoint(local), let client = SocketDiagnostics.Endpoint(channel.remoteAddress) else {
                return loop.makeSucceededFuture(.refused("the connection is neither a Unix socket nor TCP"))
            }
            guard client.isLoopback else {
                return loop.makeSucceededFuture(allowAnonymousRemote
                    ? .anonymous : .refused("a TCP client not on loopback cannot be named (only aws.allowNonLoopback lets one in)"))
            }
            switch SocketDiagnostics.owner(local: client, remote: server) {
            case .success(let uid):
                return loop.makeSucceededFuture(.peer(ConnectionPeer(PeerCredentials(pid: 0, uid: uid, gid: UserAccounts.account(of: uid)?.gid ?? uid))))
            case .failure(let failure):
                return loop.makeSucceededFuture(.refused("the user of the loopback TCP client could not be named: \(failure)"))
            }
        case nil:
            return loop.makeSucceededFuture(.refused("the connection has no local address"))
        }
    }
}
