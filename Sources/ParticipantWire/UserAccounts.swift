#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// This host's user and group accounts (the passwd and group databases, through NSS), as the
/// daemon names its peers and the client names an owner: written once for both.
package enum UserAccounts {
    /// The account of the user `uid` (getpwuid_r(3)): its name and primary group; `nil` for a
    /// uid with no account.
    package static func account(of uid: UInt32) -> (name: String, gid: UInt32)? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &found) == 0, found != nil, let name = entry.pw_name else { return nil }
        return (String(cString: name), entry.pw_gid)
    }

    /// The uid of the user named `name` (getpwnam_r(3)); `nil` when there is none.
    package static func uid(named name: String) -> UInt32? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &found) == 0, found != nil else { return nil }
        return entry.pw_uid
    }

    /// The gid of the group named `name` (getgrnam_r(3)); `nil` when there is none.
    package static func gid(named name: String) -> UInt32? {
        var entry = group()
        var found: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 65_536)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &found) == 0, found != nil else { return nil }
        return entry.gr_gid
    }

    /// A user given as a uid or a name: its uid; `nil` for a name with no account.
    package static func uid(of user: String) -> UInt32? {
        UInt32(user) ?? uid(named: user)
    }
}
