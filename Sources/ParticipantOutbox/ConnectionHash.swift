import Crypto
import ParticipantInput
import ParticipantWire

/// The first 64 bits of a connection token's SHA-256, in hex (16 characters): lets the outbox
/// order and group events by connection, and compare resubmissions, without the credential itself.
///
/// Short on purpose: the hash is a key of three indexes, and every accepted event inserts into
/// two of them at a random place, so its length sets how many pages a commit writes (64 hex
/// characters cost a third of the durable accept rate; BENCHMARKS.md). Two live connections
/// share a hash with odds of about n² / 2⁶⁵ (1 in 37 million for a million connections), and
/// then only share an order of delivery and a refusal.
///
/// A connection belongs to one Connect instance: for an instance other than the default one the
/// instance's name is hashed with the token, so that order, coalescing and refusals are per
/// instance and connection. The default instance hashes the token alone, as every event stored
/// before instances existed did.
package enum ConnectionHash {
    static let length = 16

    /// A chat named by a participant token: its token hashed apart from any connection token's.
    package static func of(_ credential: ChatCredential, instance: String) -> String {
        switch credential {
        case .connection(let token): of(token, instance: instance)
        case .participant(let token, _): of("participant\u{0}" + token, instance: instance)
        }
    }

    package static func of(_ connectionToken: String, instance: String) -> String {
        // The token's UTF-8 hashed in place, not copied into an array first.
        var input = instance == InstanceName.defaultName ? connectionToken : "\(instance)\u{0}\(connectionToken)"
        var hasher = SHA256()
        input.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        let digest = hasher.finalize()
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(length)
        for byte in digest.prefix(length / 2) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
