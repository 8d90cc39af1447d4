#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON of the answers written on every accepted event (`POST /v1/events` and its batch),
/// written directly, byte for byte what ``WireCoding/encoder(pretty:)`` writes for them (sorted
/// keys, slashes unescaped, absent optionals left out; `AnswerWriterTests` compares the two on
/// thousands of random records).
///
/// Written by hand because Foundation's `JSONEncoder` spent a quarter of the request path's
/// instructions on one ``SubmitResponse`` (BENCHMARKS.md, "Instructions"): a tree of
/// boxed values, a dynamic cast and a nested encoder per date, then sorting every object's keys.
/// Every other answer still goes through `JSONEncoder`.
public enum AnswerWriter {
    /// The answer and a newline.
    public static func jsonLine(_ response: SubmitResponse) -> [UInt8] {
        var out = Output()
        out.bytes.reserveCapacity(640)
        write(response, to: &out)
        out.bytes.append(0x0A)
        return out.bytes
    }

    public static func jsonLine(_ response: BatchSubmitResponse) -> [UInt8] {
        var out = Output()
        out.bytes.reserveCapacity(64 + response.results.count * 640)
        out.raw("{\"results\":[")
        for (index, result) in response.results.enumerated() {
            if index > 0 { out.bytes.append(UInt8(ascii: ",")) }
            out.raw("{\"body\":")
            switch result.body {
            case .event(let response): write(response, to: &out)
            case .error(let error): write(error, to: &out)
            }
            out.raw(",\"status\":")
            out.raw(String(result.status))
            out.bytes.append(UInt8(ascii: "}"))
        }
        out.raw("]}\n")
        return out.bytes
    }

    static func write(_ response: SubmitResponse, to out: inout Output) {
        out.raw("{\"created\":")
        out.raw(response.created ? "true" : "false")
        out.raw(",\"event\":")
        write(response.event, to: &out)
        out.raw(",\"warnings\":[")
        for (index, warning) in response.warnings.enumerated() {
            if index > 0 { out.bytes.append(UInt8(ascii: ",")) }
            out.string(warning)
        }
        out.raw("]}")
    }

    /// The keys in the order `.sortedKeys` gives them.
    static func write(_ record: EventRecord, to out: inout Output) {
        var first = true
        out.bytes.append(UInt8(ascii: "{"))
        out.field("absoluteTime", record.absoluteTime, &first)
        out.field("acceptedAt", date: record.acceptedAt, &first)
        out.key("attempts", &first)
        out.raw(String(record.attempts))
        out.field("clientToken", record.clientToken, &first)
        out.field("connectionHash", record.connectionHash, &first)
        out.field("content", record.content, &first)
        out.field("contentType", record.contentType, &first)
        out.field("deadline", date: record.deadline, &first)
        out.field("id", record.id, &first)
        out.field("instance", record.instance, &first)
        out.field("kind", record.kind?.rawValue, &first)
        if let error = record.lastError {
            out.key("lastError", &first)
            write(error, to: &out)
        }
        out.field("nextAttemptAt", date: record.nextAttemptAt, &first)
        out.field("processingStatus", record.processingStatus, &first)
        out.field("state", record.state.rawValue, &first)
        out.field("supersededBy", record.supersededBy, &first)
        out.field("updatedAt", date: record.updatedAt, &first)
        out.bytes.append(UInt8(ascii: "}"))
    }

    static func write(_ error: ErrorBody, to out: inout Output) {
        out.raw("{\"code\":")
        out.string(error.code)
        out.raw(",\"message\":")
        out.string(error.message)
        out.bytes.append(UInt8(ascii: "}"))
    }

    struct Output {
        var bytes: [UInt8] = []

        /// A byte of a JSON string as Foundation's JSONWriter escapes it.
        private mutating func escape(_ byte: UInt8) {
            bytes.append(0x5C)
            switch byte {
            case 0x08: bytes.append(UInt8(ascii: "b"))
            case 0x0C: bytes.append(UInt8(ascii: "f"))
            case 0x0A: bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "t"))
            case 0x00..<0x20:
                let hex: StaticString = "0123456789abcdef"
                bytes.append(UInt8(ascii: "u"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(UInt8(ascii: "0"))
                hex.withUTF8Buffer { digits in
                    bytes.append(digits[Int(byte >> 4)])
                    bytes.append(digits[Int(byte & 0x0F)])
                }
            default: bytes.append(byte)
            }
        }

        /// `"key":`, after a comma unless it is the object's first.
        mutating func key(_ key: StaticString, _ first: inout Bool) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            bytes.append(UInt8(ascii: "\""))
            key.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(UInt8(ascii: "\""))
            bytes.append(UInt8(ascii: ":"))
        }

        /// A string field; nothing when `value` is nil (as `encodeIfPresent`).
        mutating func field(_ key: StaticString, _ value: String?, _ first: inout Bool) {
            guard let value else { return }
            self.key(key, &first)
            string(value)
        }

        mutating func field(_ key: StaticString, date value: Date?, _ first: inout Bool) {
            guard let value else { return }
            self.key(key, &first)
            // Its digits straight into the answer: a string per date cost as much again.
            bytes.append(UInt8(ascii: "\""))
            if !WireCoding.appendTimestamp(value, to: &bytes) {
                bytes.append(contentsOf: WireCoding.formatTimestamp(value).utf8)
            }
            bytes.append(UInt8(ascii: "\""))
        }

        mutating func raw(_ text: String) {
            bytes.append(contentsOf: text.utf8)
        }

        /// A JSON string as Foundation's JSONWriter escapes it: `"` and `\`, the control
        /// characters (`\b \f \n \r \t` short, the others `\u00XX`), nothing else.
        mutating func string(_ text: String) {
            bytes.append(UInt8(ascii: "\""))
            // Copied in runs between the bytes that need an escape (most strings, tokens, ids,
            // content types, have none), from the string's own storage.
            var text = text
            text.withUTF8 { utf8 in
                var run = 0
                for index in utf8.indices {
                    let byte = utf8[index]
                    guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run..<index]))
                    escape(byte)
                    run = index + 1
                }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run...]))
            }
            bytes.append(UInt8(ascii: "\""))
        }
    }
}
