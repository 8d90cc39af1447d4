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
    let adminGroups: Set<UInt32>
    let ownUID: UInt32

    public static let open = ResolvedAccess(restrictsPeers: false, users: [], groups: [], adminGroups: [], ownUID: geteuid())

    /// Whether the peer may use the socket at all; an anonymous peer (`nil`: a non-loopback TCP
    /// client under `aws.allowNonLoopback`) only while no allow list is set.
    func allows(_ peer: ConnectionPeer?) -> Bool {
        guard restrictsPeers else { return true }
        guard let peer else { return false }
        let uid = peer.credentials.uid
        if uid == 0 || uid == ownUID || users.contains(uid) { return true }
        return !groups.isDisjoint(with: peer.groups)
    }

    /// Whether the peer sees and changes every peer's items (root, the daemon's own user, a member
    /// of `access.adminGroups`); any other sees and changes only its own. An anonymous peer is
    /// never one.
    func seesEveryone(_ peer: ConnectionPeer?) -> Bool {
        guard let peer else { return false }
        if peer.credentials.uid == 0 || peer.credentials.uid == ownUID { return true }
        return !adminGroups.isDisjoint(with: peer.groups)
    }

    /// The items a queue command of this request sees: the peer's own, or everyone's for an
    /// administrator, who may name one user's with `owner=UID` in the query.
    /// - Throws: 400 for an `owner` that is not a uid; 403 when a peer that is not an
    ///   administrator names another (never a 404 that would say whether the other has items).
    func scope(of request: Request, _ context: DaemonRequestContext) throws(APIError) -> ItemScope {
        let everyone = seesEveryone(context.connectionPeer)
        guard let raw = request.uri.queryParameters["owner"].map(String.init), !raw.isEmpty else {
            return everyone ? .everyone : .peer(context.peerID)
        }
        guard let uid = UInt32(raw) else {
            throw APIError(.badRequest, code: APIErrorCode.validation, message: "owner must be a user id (a whole number from 0 to \(UInt32.max)), got \"\(raw)\"")
        }
        if everyone || Int64(uid) == context.peerID { return .peer(Int64(uid)) }
        context.logger.warning("Queue command refused: the peer named another user's items", metadata: PeerCredentials.metadata(context))
        throw APIError(.forbidden, code: APIErrorCode.accessDenied,
                       message: "owner=\(uid) names another user's items: only root, participantd's user and the groups in access.adminGroups may")
    }

    /// The peer's primary group and its user's supplementary groups (getgrouplist(3)).
    static func groups(of peer: PeerCredentials) -> Set<UInt32> {
        var result: Set<UInt32> = [peer.gid]
        guard let name = UserAccounts.account(of: peer.uid)?.name else { return result }
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
