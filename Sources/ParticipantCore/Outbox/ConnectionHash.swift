import Crypto

/// A connection token's SHA-256, in hex: lets the outbox order and group events by connection,
/// and compare resubmissions, without the credential itself.
enum ConnectionHash {
    static func of(_ connectionToken: String) -> String {
        SHA256.hash(data: Array(connectionToken.utf8))
            .map { byte in
                let hex = String(byte, radix: 16)
                return byte < 16 ? "0" + hex : hex
            }
            .joined()
    }
}
