import Foundation
import Hummingbird
import Logging
import NIOCore
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// ``AccessPolicy`` with ids, as each request is checked against it.
public struct ResolvedAccess: Sendable {
    let restrictsPeers: Bool
    let users: Set<UInt32>
    let groups: Set<UInt32>
    let restrictsChanges: Bool
    let adminGroups: Set<UInt32>
    let ownUID: UInt32

    public static let open = ResolvedAccess(restrictsPeers: false, users: [], groups: [], restrictsChanges: false, adminGroups: [], ownUID: geteuid())

    /// Whether the peer may use the socket at all; an anonymous peer (`nil`: a non-loopback TCP
    /// client under `aws.allowNonLoopback`) only while no allow list is set.
    func allows(_ peer: ConnectionPeer?) -> Bool {
        guard restrictsPeers else { return true }
        guard let peer else { return false }
        let uid = peer.credentials.uid
        if uid == 0 || uid == ownUID || users.contains(uid) { return true }
        return !groups.isDisjoint(with: peer.groups)
    }

    /// Whether the peer may change the queue.
    func allowsChanges(_ peer: ConnectionPeer?) -> Bool {
        guard restrictsChanges else { return true }
        // Over TCP only SendEvent is served; a change without credentials is refused.
        guard let peer else { return false }
        if peer.credentials.uid == 0 || peer.credentials.uid == ownUID { return true }
        return !adminGroups.isDisjoint(with: peer.groups)
    }

    /// The peer's primary group and its user's supplementary groups (getgrouplist(3)).
    static func groups(of peer: PeerCredentials) -> Set<UInt32> {
        var result: Set<UInt32> = [peer.gid]
        guard let name = PeerName.account(of: peer.uid)?.name else { return result }
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, peer.gid, &list, &count) == -1 {
            list = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, peer.gid, &list, &count) != -1 else { return result }
        }
        result.formUnion(list.prefix(Int(count)))
        return result
    }
}
