import ParticipantWire

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The common body of `POST /v1/events` and of each element of its batch, read without
/// `JSONDecoder`: a JSON object whose members are strings, booleans or null.
///
/// A fast path only. It answers `nil` for anything outside that narrow shape (a number, a nested
/// value, a duplicate or unknown member, a member of the wrong type, a lone surrogate, bytes that
/// are not UTF-8, anything that is not JSON), and the caller then decodes with `JSONDecoder` as
/// before, which gives the answer and names what is wrong. Where it answers, it answers what
/// `JSONDecoder` would (`FlatJSONTests` compares the two on generated bodies).
///
/// Written by hand, as no package here reads JSON without building a value tree: `JSONDecoder`
/// cost about 64,000 instructions of an accepted event's 700,000 (BENCHMARKS.md, issue 31).
enum FlatJSON {
    enum Value: Equatable {
        case string(String)
        case bool(Bool)
        case null
    }

    /// An ``EventSubmission`` from a body that is such an object with only its fields, or nil.
    static func eventSubmission(_ body: Data) -> EventSubmission? {
        body.withUnsafeBytes { bytes in
            var reader = Reader(bytes: bytes)
            guard let submission = reader.eventSubmission(), reader.atEnd() else { return nil }
            return submission
        }
    }

    /// The elements of `{"events": [OBJECT, ...]}` when every one is such an object with only an
    /// event's fields, or nil.
    static func eventBatch(_ body: Data) -> [EventSubmission]? {
        body.withUnsafeBytes { bytes -> [EventSubmission]? in
            var reader = Reader(bytes: bytes)
            guard reader.skip(UInt8(ascii: "{")), let key = reader.string(), key == "events", reader.skip(UInt8(ascii: ":")),
                  reader.skip(UInt8(ascii: "["))
            else { return nil }
            var events: [EventSubmission] = []
            if !reader.skip(UInt8(ascii: "]")) {
                repeat {
                    guard let event = reader.eventSubmission() else { return nil }
                    events.append(event)
                } while reader.skip(UInt8(ascii: ","))
                guard reader.skip(UInt8(ascii: "]")) else { return nil }
            }
            guard reader.skip(UInt8(ascii: "}")), reader.atEnd() else { return nil }
            return events
        }
    }

    /// The members of a flat object, in order (a repeated key as often as it comes), or nil: a
    /// receipt's content (`EventValidator`), its UTF-8 read in place.
    static func members(_ text: String) -> [(key: String, value: Value)]? {
        var text = text
        return text.withUTF8 { utf8 in
            var reader = Reader(bytes: UnsafeRawBufferPointer(utf8))
            guard let members = reader.object(), reader.atEnd() else { return nil }
            return members
        }
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        /// Whitespace, then `byte`: consumed if there.
        mutating func skip(_ byte: UInt8) -> Bool {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func atEnd() -> Bool {
            skipWhitespace()
            return index == bytes.count
        }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count - index >= count else { return false }
            for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return false }
            index += count
            return true
        }

        mutating func value() -> Value? {
            skipWhitespace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            default: return nil
            }
        }

        /// `{ "key": value, ... }` with string, boolean or null values; nil for anything else.
        mutating func object() -> [(key: String, value: Value)]? {
            guard skip(UInt8(ascii: "{")) else { return nil }
            var members: [(key: String, value: Value)] = []
            if skip(UInt8(ascii: "}")) { return members }
            repeat {
                guard let key = string(), skip(UInt8(ascii: ":")), let value = value() else { return nil }
                members.append((key, value))
            } while skip(UInt8(ascii: ","))
            return skip(UInt8(ascii: "}")) ? members : nil
        }

        /// An object with an event's fields only, each at most once and of its type.
        mutating func eventSubmission() -> EventSubmission? {
            guard let members = object() else { return nil }
            var submission = EventSubmission(contentType: nil, connectionToken: nil)
            var seen: UInt8 = 0
            for (key, value) in members {
                let bit: UInt8
                switch key {
                case "contentType": bit = 1 << 0
                case "content": bit = 1 << 1
                case "clientToken": bit = 1 << 2
                case "connectionToken": bit = 1 << 3
                case "instance": bit = 1 << 4
                case "participantToken": bit = 1 << 5
                case "connectParticipant": bit = 1 << 6
                default: return nil
                }
                guard seen & bit == 0 else { return nil }
                seen |= bit
                if key == "connectParticipant" {
                    switch value {
                    case .bool(let flag): submission.connectParticipant = flag
                    case .null: break
                    case .string: return nil
                    }
                    continue
                }
                let text: String?
                switch value {
                case .string(let string): text = string
                case .null: text = nil
                case .bool: return nil
                }
                switch key {
                case "contentType": submission.contentType = text
                case "content": submission.content = text
                case "clientToken": submission.clientToken = text
                case "connectionToken": submission.connectionToken = text
                case "instance": submission.instance = text
                default: submission.participantToken = text
                }
            }
            return submission
        }

        /// A JSON string (whitespace before it skipped), unescaped; nil if it is not one, holds a
        /// control character or a lone surrogate, or is not UTF-8.
        mutating func string() -> String? {
            guard skip(UInt8(ascii: "\"")) else { return nil }
            let start = index
            // The common case: no escape. ASCII is UTF-8 as it is; other bytes are checked by
            // String(validating:), whose generic validation costs about 1,000 instructions a
            // string (BENCHMARKS.md, "Issue 31, sixth round").
            var ascii = true
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let content = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                    let text = ascii ? String(decoding: content, as: UTF8.self) : String(validating: content, as: UTF8.self)
                    index += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { return nil }
                if byte >= 0x80 { ascii = false }
                index += 1
            }
            guard index < bytes.count else { return nil }
            var unescaped = Array(bytes[start..<index])
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(validating: unescaped, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): unescaped.append(escape)
                    case UInt8(ascii: "b"): unescaped.append(0x08)
                    case UInt8(ascii: "f"): unescaped.append(0x0C)
                    case UInt8(ascii: "n"): unescaped.append(0x0A)
                    case UInt8(ascii: "r"): unescaped.append(0x0D)
                    case UInt8(ascii: "t"): unescaped.append(0x09)
                    case UInt8(ascii: "u"):
                        guard let first = hex4() else { return nil }
                        var scalar = UInt32(first)
                        if (0xD800..<0xDC00).contains(first) {
                            guard literal("\\u"), let second = hex4(), (0xDC00..<0xE000).contains(second) else { return nil }
                            scalar = 0x10000 + ((UInt32(first) - 0xD800) << 10) + (UInt32(second) - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(first) {
                            return nil
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { return nil }
                        unescaped.append(contentsOf: String(Character(unicode)).utf8)
                    default:
                        return nil
                    }
                default:
                    if byte < 0x20 { return nil }
                    unescaped.append(byte)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt16? {
            guard bytes.count - index >= 4 else { return nil }
            var value: UInt16 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt16(digit)
                index += 1
            }
            return value
        }
    }
}
