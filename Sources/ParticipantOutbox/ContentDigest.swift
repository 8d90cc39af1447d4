import Crypto
import Foundation
import GRDB

/// What deduplication keeps of an item's content once the content itself is gone: the first
/// 128 bits of the SHA-256 of the content (a marker byte first, so that no content and an empty
/// one differ). An item that ends `sent` or `superseded` keeps this digest, its key and the
/// service's answer, and no content: a resubmission with the same ClientToken is still told apart
/// from a different item under that token (409), and the disk holds the content of waiting items
/// only.
package enum ContentDigest {
    static let length = 16

    package static func of(_ content: String?) -> Data {
        var hasher = SHA256()
        if var content {
            hasher.update(data: [1] as [UInt8])
            content.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        } else {
            hasher.update(data: [0] as [UInt8])
        }
        // Copied as bytes: `Data(digest.prefix(n))` went through Data's generic sequence
        // initializer, about 4,200 instructions (BENCHMARKS.md, "Issue 31, sixth round").
        return hasher.finalize().withUnsafeBytes { Data($0.prefix(length)) }
    }

    /// The SQL function `participantd_digest(content)` the v13 migration computes stored items'
    /// digests with.
    static let sqlFunction = DatabaseFunction("participantd_digest", argumentCount: 1, pure: true) { values in
        ContentDigest.of(String.fromDatabaseValue(values[0]))
    }
}
