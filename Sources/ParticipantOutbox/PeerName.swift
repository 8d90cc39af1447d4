import Foundation
import Synchronization

/// A peer (the uid the outbox keeps with each item) as operators read it in `stats` and the
/// metrics: the user's name, `uid N` for a uid with no account, `unknown` for items whose
/// submitter is not known. Names are looked up once (getpwuid_r(3)) and kept.
public enum PeerName {
    private static let names = Mutex<[Int64: String]>([:])

    public static func of(_ peer: Int64) -> String {
        if peer == Outbox.unknownPeer { return "unknown" }
        if let name = names.withLock({ $0[peer] }) { return name }
        let name = UInt32(exactly: peer).flatMap { account(of: $0)?.name } ?? "uid \(peer)"
        names.withLock { names in
            if names.count >= 10_000 { names.removeAll() }
            names[peer] = name
        }
        return name
    }

    /// The account of the user `uid` (getpwuid_r(3)): its name and primary group; `nil` for a
    /// uid with no account.
    package static func account(of uid: UInt32) -> (name: String, gid: UInt32)? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &found) == 0, found != nil, let name = entry.pw_name else { return nil }
        return (String(cString: name), entry.pw_gid)
    }
}
