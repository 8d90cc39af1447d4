import Foundation

/// When a connection token the daemon created (CreateParticipantConnection) is still good to send
/// with, and whether CreateParticipantConnection is failing for long enough to tell health.
public enum ConnectionRenewal {
    /// Renewed when less than a minute of its life is left, or less than a fifth of it if that is
    /// shorter (a token living 10 s is renewed 2 s before its end): a request never leaves with a
    /// token about to expire. `nil` times: there is no connection yet.
    public static func isUsable(createdAt: Date?, expiresAt: Date?, now: Date) -> Bool {
        guard let createdAt, let expiresAt else { return false }
        let lifetime = max(0, expiresAt.timeIntervalSince(createdAt))
        let margin = min(60, lifetime / 5)
        return expiresAt.timeIntervalSince(now) > margin
    }

    /// Failures in a row after which health says CreateParticipantConnection is failing.
    public static let failuresForHealth = 3
}
