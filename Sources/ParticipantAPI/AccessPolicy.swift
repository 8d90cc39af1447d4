import Foundation
import Hummingbird
import Logging
import NIOCore
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// Who may use the socket (`access.allowUsers`, `access.allowGroups`) and who sees and changes
/// every user's items (`access.adminGroups`; root and the daemon's own user always do; any other
/// user, only its own). Empty allow lists: the socket file's mode and group decide alone.
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

    /// The lists with names resolved to ids; an unknown name is a configuration error.
    public func resolved() throws(ConfigurationError) -> ResolvedAccess {
        var users: Set<UInt32> = []
        for user in allowUsers {
            guard let uid = UserAccounts.uid(of: user) else {
                throw ConfigurationError(key: "access.allowUsers", rule: "no user named \"\(user)\" on this system")
            }
            users.insert(uid)
        }
        func groups(_ names: [String], key: String) throws(ConfigurationError) -> Set<UInt32> {
            var ids: Set<UInt32> = []
            for name in names {
                guard let gid = UInt32(name) ?? UserAccounts.gid(named: name) else {
                    throw ConfigurationError(key: key, rule: "no group named \"\(name)\" on this system")
                }
                ids.insert(gid)
            }
            return ids
        }
        return ResolvedAccess(
            restrictsPeers: restrictsPeers, users: users, groups: try groups(allowGroups, key: "access.allowGroups"),
            adminGroups: try groups(adminGroups, key: "access.adminGroups"),
            ownUID: geteuid()
        )
    }
}
