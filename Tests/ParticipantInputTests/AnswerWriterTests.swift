import Foundation
import ParticipantTestSupport
import Testing
@testable import ParticipantWire

/// The hand-written answers and timestamps against Foundation's: byte for byte the same.
@Suite struct AnswerWriterTests {
    /// Strings with what escaping must get right: quotes, backslashes, slashes, every control
    /// character, non-ASCII letters and emoji.
    static func text(_ random: inout SeededGenerator) -> String {
        let pieces = ["a", "Z", "0", "\"", "\\", "/", "é", "日本", "👍🏽", " ", "{\"messageId\":\"m\"}", "\u{7F}", "\u{2028}"]
            + (0..<32).map { String(UnicodeScalar(UInt8($0))) }
        return (0..<Int.random(in: 0...12, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    static func date(_ random: inout SeededGenerator) -> Date {
        Date(timeIntervalSince1970: Double.random(in: 0..<253_402_300_800, using: &random))
    }

    static func record(_ random: inout SeededGenerator) -> EventRecord {
        func maybe<T>(_ value: @autoclosure () -> T) -> T? { Bool.random(using: &random) ? value() : nil }
        return EventRecord(
            clientToken: text(&random), contentType: text(&random), content: maybe(text(&random)),
            state: EventState.allCases.randomElement(using: &random)!, attempts: Int.random(in: 0...1_000_000, using: &random),
            acceptedAt: date(&random), updatedAt: date(&random), nextAttemptAt: maybe(date(&random)), deadline: date(&random),
            lastError: maybe(ErrorBody(code: text(&random), message: text(&random))), id: maybe(text(&random)),
            absoluteTime: maybe(text(&random)), supersededBy: maybe(text(&random)), connectionHash: maybe(text(&random)),
            instance: maybe(text(&random)), kind: maybe(ItemKind.allCases.randomElement(using: &random)!),
            processingStatus: maybe(text(&random))
        )
    }

    @Test("Timestamps: the same text as Date.ISO8601FormatStyle, from 1970 to 9999, to the millisecond")
    func timestamps() {
        var random = SeededGenerator(state: 1)
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 951_782_400.999_9), Date(timeIntervalSince1970: 253_402_300_799.999)]
        for _ in 0..<20_000 { dates.append(Self.date(&random)) }
        for _ in 0..<2_000 { dates.append(Date(timeIntervalSince1970: Double(Int64.random(in: 0..<4_102_444_800_000, using: &random)) / 1000)) }
        for date in dates {
            #expect(WireCoding.formatTimestamp(date) == WireCoding.formatTimestampWithFormatStyle(date), "\(date.timeIntervalSince1970)")
        }
    }

    @Test("Answers: the same bytes as WireCoding's JSONEncoder for thousands of random records and batches")
    func answers() throws {
        var random = SeededGenerator(state: 2)
        let encoder = WireCoding.encoder()
        for _ in 0..<3_000 {
            let response = SubmitResponse(event: Self.record(&random), created: Bool.random(using: &random),
                                          warnings: (0..<Int.random(in: 0...2, using: &random)).map { _ in Self.text(&random) })
            var expected = try encoder.encode(response)
            expected.append(0x0A)
            #expect(AnswerWriter.jsonLine(response) == Array(expected), "\(String(decoding: expected, as: UTF8.self))")
        }
        for _ in 0..<200 {
            let batch = BatchSubmitResponse(results: (0..<Int.random(in: 1...5, using: &random)).map { _ in
                Bool.random(using: &random)
                    ? BatchResult(status: 202, body: .event(SubmitResponse(event: Self.record(&random), created: true, warnings: [])))
                    : BatchResult(status: 400, body: .error(ErrorBody(code: Self.text(&random), message: Self.text(&random))))
            })
            var expected = try encoder.encode(batch)
            expected.append(0x0A)
            #expect(AnswerWriter.jsonLine(batch) == Array(expected), "\(String(decoding: expected, as: UTF8.self))")
        }
    }
}
