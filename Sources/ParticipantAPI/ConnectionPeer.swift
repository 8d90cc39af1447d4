import Foundation
import Hummingbird
import Logging
import NIOCore
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// The peer of one Unix socket connection: its credentials, read when it opened, and its groups,
/// looked up once for the connection (on its first request that needs them), not per request.
public final class ConnectionPeer: Sendable {
    /// The peer of the connection whose requests this task serves; `nil` on TCP.
    @TaskLocal static var current: ConnectionPeer?

    public let credentials: PeerCredentials
    private let groupCache = Mutex<Set<UInt32>?>(nil)

    init(_ credentials: PeerCredentials) {
        self.credentials = credentials
    }

    /// The peer's primary group and its user's supplementary groups (getgrouplist(3)).
    var groups: Set<UInt32> {
        if let groups = groupCache.withLock({ $0 }) { return groups }
        let groups = ResolvedAccess.groups(of: credentials)
        groupCache.withLock { $0 = groups }
        return groups
    }
}
