import Foundation
import Logging
import Synchronization

/// One log record as an entry of systemd's journal, in its native protocol
/// (systemd.io/JOURNAL_NATIVE_PROTOCOL, the format `sd_journal_sendv(3)` sends): one datagram of
/// `NAME=value\n` fields, a value holding a newline sent as `NAME\n`, its length as 64-bit little
/// endian, the bytes, `\n`.
///
/// Written by hand: libsystemd is not linked (the package must not need it), and no Swift package
/// on this machine speaks the protocol; it is a few lines.
package enum JournalEntry {
    /// The fields of one record: `MESSAGE` (the stream line's text, so `journalctl -u participantd`
    /// reads as before), `PRIORITY`, `SYSLOG_IDENTIFIER`, `MESSAGE_ID` for a lifecycle message
    /// (``JournalCatalog``), the code location, then each metadata key as a field of its own.
    package static func fields(
        level: Logger.Level, message: String, metadata: [(key: String, value: Logger.MetadataValue)],
        file: String, line: UInt, function: String
    ) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(8 + metadata.count)
        var text = DaemonLogHandler.singleLine(message)
        DaemonLogHandler.appendLogfmt(metadata, to: &text)
        fields.append(("MESSAGE", text))
        fields.append(("PRIORITY", String(DaemonLogHandler.syslogPriority(level))))
        fields.append(("SYSLOG_IDENTIFIER", "participantd"))
        if let id = JournalCatalog.messageID(for: message) {
            fields.append(("MESSAGE_ID", id))
        }
        fields.append(("CODE_FILE", file))
        fields.append(("CODE_LINE", String(line)))
        fields.append(("CODE_FUNC", function))
        var taken = Set(fields.map(\.name))
        for (key, value) in metadata {
            guard let name = fieldName(key), taken.insert(name).inserted else { continue }
            fields.append((name, value.description))
        }
        return fields
    }

    /// A metadata key as a journal field name: upper case, every character but A-Z, 0-9 and `_`
    /// made `_` (`event.client_token` is `EVENT_CLIENT_TOKEN`), no leading `_` (journald's own
    /// trusted fields) or digit, at most 64 characters; `nil` when nothing is left.
    package static func fieldName(_ key: String) -> String? {
        var name = String(key.uppercased().unicodeScalars.map { scalar -> Character in
            ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) ? Character(scalar) : "_"
        })
        while let first = name.first, first == "_" || first.isNumber { name.removeFirst() }
        guard !name.isEmpty else { return nil }
        return String(name.prefix(64))
    }

    /// The datagram.
    package static func encode(_ fields: [(name: String, value: String)]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 2 })
        for (name, value) in fields {
            bytes.append(contentsOf: name.utf8)
            if value.utf8.contains(0x0A) {
                bytes.append(0x0A)
                var length = UInt64(value.utf8.count).littleEndian
                withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
                bytes.append(contentsOf: value.utf8)
            } else {
                bytes.append(0x3D)  // =
                bytes.append(contentsOf: value.utf8)
            }
            bytes.append(0x0A)
        }
        return bytes
    }

    /// A datagram read back (for tests): its fields in order.
    package static func decode(_ bytes: [UInt8]) -> [(name: String, value: String)]? {
        var fields: [(name: String, value: String)] = []
        var index = 0
        while index < bytes.count {
            guard let end = bytes[index...].firstIndex(where: { $0 == 0x3D || $0 == 0x0A }) else { return nil }
            let name = String(decoding: bytes[index..<end], as: UTF8.self)
            if bytes[end] == 0x3D {
                guard let lineEnd = bytes[(end + 1)...].firstIndex(of: 0x0A) else { return nil }
                fields.append((name, String(decoding: bytes[(end + 1)..<lineEnd], as: UTF8.self)))
                index = lineEnd + 1
            } else {
                guard end + 9 <= bytes.count else { return nil }
                let length = bytes[(end + 1)..<(end + 9)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
                let start = end + 9
                guard start + Int(length) < bytes.count, bytes[start + Int(length)] == 0x0A else { return nil }
                fields.append((name, String(decoding: bytes[start..<(start + Int(length))], as: UTF8.self)))
                index = start + Int(length) + 1
            }
        }
        return fields
    }
}

/// The journal's native socket (`/run/systemd/journal/socket`): a datagram socket of ours that
/// sends each entry to it. A send that fails (no journald there, an entry larger than a datagram
/// may be, a full queue) returns `false`, and the record goes to standard error as a stream line.
public final class JournalSocket: Sendable {
    public static let defaultPath = "/run/systemd/journal/socket"
    private let descriptor: Int32
    private let address: sockaddr_un
    private let addressLength: socklen_t
    public let path: String

    /// `nil` when the path does not fit a socket address or no socket can be made.
    public init?(path: String) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
        self.address = address
        self.addressLength = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        self.path = path
    }

    deinit { close(descriptor) }

    /// Sends one entry; `false` when it was not taken.
    public func send(_ datagram: [UInt8]) -> Bool {
        var address = address
        let length = addressLength
        return datagram.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                    while true {
                        let sent = sendto(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                        if sent == buffer.count { return true }
                        if sent < 0 && errno == EINTR { continue }
                        return false
                    }
                }
            }
        }
    }
}
