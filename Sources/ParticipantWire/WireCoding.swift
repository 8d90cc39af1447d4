#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON coders both ends of the socket use: dates as ISO 8601 with milliseconds, in UTC.
public enum WireCoding {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(formatTimestamp(date))
        }
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 timestamp: \(text)")
            }
            return date
        }
        return decoder
    }

    /// `2019-11-08T02:41:28.172Z`, the service's own format.
    ///
    /// Written by hand for the years 1970 to 9999 (the same text as `Date.ISO8601FormatStyle`,
    /// checked by `AnswerWriterTests` on many dates): the format style was a measurable part of
    /// the request path (BENCHMARKS.md), and every accepted event's answer has four dates.
    /// Other dates go through it.
    public static func formatTimestamp(_ date: Date) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(24)
        guard appendTimestamp(date, to: &text) else { return date.formatted(timestampStyle) }
        return String(decoding: text, as: UTF8.self)
    }

    /// ``formatTimestamp(_:)``'s 24 bytes appended to `bytes` (an answer's JSON is written so,
    /// without a string per date); false, and nothing appended, outside the years 1970 to 9999.
    package static func appendTimestamp(_ date: Date, to bytes: inout [UInt8]) -> Bool {
        let seconds = date.timeIntervalSince1970
        guard seconds >= 0, seconds < 253_402_300_800 else { return false }
        // The format style's arithmetic: whole seconds and the fraction's milliseconds (cut, not
        // rounded) from the interval since 2001, as a Date holds it.
        let sinceReference = date.timeIntervalSinceReferenceDate
        let whole = sinceReference.rounded(.down)
        let milliseconds = (Int64(whole) + 978_307_200) * 1000 + Int64(((sinceReference - whole) * 1000).rounded(.down))
        let (days, inDay) = milliseconds.quotientAndRemainder(dividingBy: 86_400_000)
        let (year, month, day) = civilDate(daysSince1970: days)
        let hour = inDay / 3_600_000, minute = inDay / 60_000 % 60, second = inDay / 1000 % 60, millisecond = inDay % 1000
        // The 24 bytes written in place, then appended at once: an append a digit, with its
        // capacity and uniqueness checks, cost about 1,600 instructions a date.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { text in
            func put(_ value: Int64, _ digits: Int, at offset: Int, then separator: UInt8) {
                var rest = value
                for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                    text[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                    rest /= 10
                }
                text[offset + digits] = separator
            }
            put(year, 4, at: 0, then: UInt8(ascii: "-"))
            put(month, 2, at: 5, then: UInt8(ascii: "-"))
            put(day, 2, at: 8, then: UInt8(ascii: "T"))
            put(hour, 2, at: 11, then: UInt8(ascii: ":"))
            put(minute, 2, at: 14, then: UInt8(ascii: ":"))
            put(second, 2, at: 17, then: UInt8(ascii: "."))
            put(millisecond, 3, at: 20, then: UInt8(ascii: "Z"))
            bytes.append(contentsOf: UnsafeBufferPointer(text))
        }
        return true
    }

    /// Year, month, day of the proleptic Gregorian calendar for days since 1970-01-01
    /// (Howard Hinnant's `civil_from_days`).
    package static func civilDate(daysSince1970 days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The format style's text, for the tests that compare the two.
    package static func formatTimestampWithFormatStyle(_ date: Date) -> String {
        date.formatted(timestampStyle)
    }

    /// An ISO 8601 time in UTC, with or without fractional seconds (the service's `Expiry` is
    /// written either way).
    public static func parseTimestamp(_ text: String) -> Date? {
        (try? timestampStyle.parse(text)) ?? (try? wholeSecondsStyle.parse(text))
    }

    private static let wholeSecondsStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: false, timeZone: .gmt)

    private static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
}
