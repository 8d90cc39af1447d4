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

/// Who may use the socket (`access.allowUsers`, `access.allowGroups`) and who may change the
/// queue (`access.adminGroups`). Root and the daemon's own user always may. Empty lists: the
/// socket file's mode and group decide alone.
public struct AccessPolicy: Sendable, Equatable {
    public var allowUsers: [String] = []
    public var allowGroups: [String] = []
    public var adminGroups: [String] = []

    public init(allowUsers: [String] = [], allowGroups: [String] = [], adminGroups: [String] = []) {
        self.allowUsers = allowUsers
        self.allowGroups = allowGroups
        self.adminGroups = adminGroups
    }

    public var restrictsPeers: Bool { !allowUsers.isEmpty || !allowGroups.isEmpty }
    public var restrictsChanges: Bool { !adminGroups.isEmpty }

    /// The lists with names resolved to ids; an unknown name is a configuration error.
    public func resolved() throws(ConfigurationError) -> ResolvedAccess {
        var users: Set<UInt32> = []
        for user in allowUsers {
            guard let uid = UInt32(user) ?? Self.userID(user) else {
                throw ConfigurationError(key: "access.allowUsers", rule: "no user named \"\(user)\" on this system")
            }
            users.insert(uid)
        }
        func groups(_ names: [String], key: String) throws(ConfigurationError) -> Set<UInt32> {
            var ids: Set<UInt32> = []
            for name in names {
                guard let gid = UInt32(name) ?? Self.groupID(name) else {
                    throw ConfigurationError(key: key, rule: "no group named \"\(name)\" on this system")
                }
                ids.insert(gid)
            }
            return ids
        }
        return ResolvedAccess(
            restrictsPeers: restrictsPeers, users: users, groups: try groups(allowGroups, key: "access.allowGroups"),
            restrictsChanges: restrictsChanges, adminGroups: try groups(adminGroups, key: "access.adminGroups"),
            ownUID: geteuid()
        )
    }

    static func userID(_ name: String) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.pw_uid
    }

    static func groupID(_ name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 65_536)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }
}

/// ``AccessPolicy`` with ids, as each request is checked against it.
public struct ResolvedAccess: Sendable {
    let restrictsPeers: Bool
    let users: Set<UInt32>
    let groups: Set<UInt32>
    let restrictsChanges: Bool
    let adminGroups: Set<UInt32>
    let ownUID: UInt32

    public static let open = ResolvedAccess(restrictsPeers: false, users: [], groups: [], restrictsChanges: false, adminGroups: [], ownUID: geteuid())

    /// Whether the peer may use the socket at all; a TCP peer (no credentials) is not checked here.
    func allows(_ peer: ConnectionPeer?) -> Bool {
        guard restrictsPeers, let peer else { return true }
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

    /// How many times the groups of a peer were looked up (tests: once per connection).
    package static let groupLookups = Atomic<Int>(0)

    /// The peer's primary group and its user's supplementary groups (getgrouplist(3)).
    static func groups(of peer: PeerCredentials) -> Set<UInt32> {
        groupLookups.add(1, ordering: .relaxed)
        var result: Set<UInt32> = [peer.gid]
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(peer.uid, &entry, &buffer, buffer.count, &found) == 0, found != nil, let name = entry.pw_name else {
            return result
        }
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
