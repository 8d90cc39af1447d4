import Foundation
import Synchronization
import ParticipantWire

/// A peer (the uid the outbox keeps with each item) as operators read it in `stats` and the
/// metrics: the user's name, `uid N` for a uid with no account, `unknown` for items whose
/// submitter is not known. Names are looked up once (getpwuid_r(3)) and kept.
public enum PeerName {
    private static let names = Mutex<[Int64: String]>([:])

    public static func of(_ peer: Int64) -> String {
        if peer == Outbox.unknownPeer { return "unknown" }
        if let name = names.withLock({ $0[peer] }) { return name }
        let name = UInt32(exactly: peer).flatMap { UserAccounts.account(of: $0)?.name } ?? "uid \(peer)"
        names.withLock { names in
            if names.count >= 10_000 { names.removeAll() }
            names[peer] = name
        }
        return name
    }

    /// The user's name; `nil` for a uid with no account or an unknown peer.
    public static func user(of peer: Int64) -> String? {
        let name = of(peer)
        return peer == Outbox.unknownPeer || name == "uid \(peer)" ? nil : name
    }

    /// The peer with its uid as an error message names it: `alice (uid 1000)`, `uid 4242`, `unknown`.
    public static func described(_ peer: Int64) -> String {
        user(of: peer).map { "\($0) (uid \(peer))" } ?? of(peer)
    }
}
