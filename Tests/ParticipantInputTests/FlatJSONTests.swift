import Foundation
@testable import ParticipantInput
import ParticipantTestSupport
import ParticipantWire
import Testing

/// The fast path for the common body (``FlatJSON``) against `JSONDecoder`: where it answers, the
/// same submission; where it cannot be sure, no answer (the caller then uses `JSONDecoder`).
@Suite struct FlatJSONTests {
    static func decoded(_ body: String) -> EventSubmission? {
        try? JSONDecoder().decode(EventSubmission.self, from: Data(body.utf8))
    }

    @Test("The common bodies: the same submission as JSONDecoder's")
    func commonBodies() throws {
        let bodies = [
            #"{"contentType":"application/vnd.amazonaws.connect.event.message.read","clientToken":"t-1","connectionToken":"c","content":"{\"messageId\":\"m-1\"}"}"#,
            #" { "contentType" : "x" , "content" : null , "instance" : "eu" , "participantToken" : "p" , "connectParticipant" : true } "#,
            #"{"content":"line\nnext \t tab \/ slash \\ back \" quote \u00e9 \uD83D\uDE00 \u0000 end","connectParticipant":false}"#,
            "{\"content\":\"é 日本 👍🏽\",\"clientToken\":\"\"}",
            "{}",
            "\r\n\t{\"connectionToken\":\"c\"}\n",
        ]
        for body in bodies {
            let fast = try #require(FlatJSON.eventSubmission(Data(body.utf8)), "\(body)")
            #expect(fast == Self.decoded(body), "\(body)")
        }
    }

    @Test("Anything else: no answer, so that JSONDecoder gives the answer and names the error")
    func fallsBack() {
        let bodies = [
            #"{"contentType":"a","contentType":"b"}"#,  // a duplicate
            #"{"contentTyp":"a"}"#,  // unknown
            #"{"content":1}"#, #"{"content":{"a":"b"}}"#, #"{"content":["a"]}"#, #"{"content":true}"#,
            #"{"connectParticipant":"true"}"#, #"{"connectParticipant":1}"#,
            #"{"content":"\uD83D"}"#, #"{"content":"\uDE00x"}"#, #"{"content":"\x"}"#, #"{"content":"\u12"}"#,
            "{\"content\":\"a\u{01}b\"}", "{\"content\":\"a\nb\"}",
            #"{"content":"a"} x"#, #"{"content":"a""#, #"{"content":"a",}"#, #"{,}"#, "", " ", "[]", #""a""#, "nul",
            #"{"content":tru}"#, #"{"content" "a"}"#,
        ]
        for body in bodies {
            #expect(FlatJSON.eventSubmission(Data(body.utf8)) == nil, "\(body)")
        }
        // Bytes that are not UTF-8, in a string.
        #expect(FlatJSON.eventSubmission(Data([0x7B, 0x22, 0x63, 0x6F, 0x6E, 0x74, 0x65, 0x6E, 0x74, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D])) == nil)
        // ASCII, then a sequence cut short (é's first byte alone), then ASCII again.
        #expect(FlatJSON.eventSubmission(Data(#"{"content":"ab"#.utf8) + Data([0xC3]) + Data(#"cd"}"#.utf8)) == nil)
    }

    @Test("Generated bodies, well formed and broken: where the fast path answers, JSONDecoder answers the same")
    func againstJSONDecoder() throws {
        var random = SeededGenerator(state: 20261207)
        let keys = EventSubmission.CodingKeysForTests.all + ["other", "Content"]
        let strings = ["", "a", "é", "👍🏽", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\uD83D\\uDE00", "\\uDE00", "\\u0041", "{\\\"messageId\\\":\\\"m\\\"}", " ", "\\t"]
        let values = ["null", "true", "false", "1", "{}", "[]"] + strings.map { "\"\($0)\"" }
        // With two that JSON does not count as whitespace (vertical tab, form feed).
        let spaces = ["", " ", "\n", "\t", "\r\n", "", " ", "\u{0B}", "\u{0C}"]
        var answered = 0
        for _ in 0..<20_000 {
            var body = spaces.randomElement(using: &random)! + "{"
            let count = Int.random(in: 0...5, using: &random)
            for index in 0..<count {
                if index > 0 { body += "," }
                body += spaces.randomElement(using: &random)! + "\"\(keys.randomElement(using: &random)!)\"" + spaces.randomElement(using: &random)!
                body += ":" + spaces.randomElement(using: &random)! + values.randomElement(using: &random)!
            }
            body += "}" + spaces.randomElement(using: &random)!
            // Now and then broken: a byte dropped.
            if Int.random(in: 0..<8, using: &random) == 0, !body.isEmpty {
                var bytes = Array(body.utf8)
                bytes.remove(at: Int.random(in: 0..<bytes.count, using: &random))
                body = String(decoding: bytes, as: UTF8.self)
            }
            if let fast = FlatJSON.eventSubmission(Data(body.utf8)) {
                answered += 1
                #expect(fast == Self.decoded(body), "\(body)")
                if fast != Self.decoded(body) { return }
            }
        }
        #expect(answered > 1_000, "the generator should reach the fast path often: \(answered)")
    }

    @Test("A batch: every element flat gives the elements; one that is not, no answer")
    func batches() throws {
        struct Batch: Decodable { var events: [EventSubmission] }
        let body = #"{"events":[{"contentType":"a","connectionToken":"c"}, {"content":"\u00e9","connectParticipant":true} ]}"#
        let fast = try #require(FlatJSON.eventBatch(Data(body.utf8)))
        #expect(fast == (try JSONDecoder().decode(Batch.self, from: Data(body.utf8))).events)
        #expect(FlatJSON.eventBatch(Data(#"{"events":[]}"#.utf8)) == [])
        for broken in [#"{"events":[{"content":1}]}"#, #"{"events":[{"a":"b"}]}"#, #"{"events":{}}"#, #"{"other":[],"events":[]}"#,
                       #"{"events":[{}],"events":[]}"#, #"{"events":[{},]}"#, #"{"events":[{}]"#] {
            #expect(FlatJSON.eventBatch(Data(broken.utf8)) == nil, "\(broken)")
        }
    }

    @Test("The requests answer as before: an error still names its field")
    func requestsAnswerAsBefore() throws {
        let event = try RequestDecoding.daemonRequest(body: Data(#"{"contentType":"application/vnd.amazonaws.connect.event.typing","connectionToken":"c"}"#.utf8))
        #expect(event.connectionToken == "c")
        #expect(throws: RequestError.invalid(ValidationError(field: "content", rule: "must be a string"))) {
            try RequestDecoding.daemonRequest(body: Data(#"{"contentType":"application/vnd.amazonaws.connect.event.typing","connectionToken":"c","content":1}"#.utf8))
        }
        let results = try RequestDecoding.batchRequest(body: Data(#"{"events":[{"contentType":"application/vnd.amazonaws.connect.event.typing","connectionToken":"c"},{"contentType":"x","connectionToken":"c"}]}"#.utf8), maxEvents: 10)
        #expect(results.count == 2)
        #expect((try? results[0].get()) != nil)
        #expect(throws: RequestError.self) { try results[1].get() }
    }
}

extension EventSubmission {
    enum CodingKeysForTests {
        static let all = ["contentType", "content", "clientToken", "connectionToken", "instance", "participantToken", "connectParticipant"]
    }
}

/// A receipt's `messageId`, read without JSONSerialization when the content is a flat object.
@Suite struct ReceiptMessageIdTests {
    /// What the validator answered before FlatJSON: JSONSerialization's reading.
    static func reference(_ content: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(content.utf8)) as? [String: Any],
              let id = object["messageId"] as? String, !id.isEmpty else { return nil }
        return id
    }

    static func validated(_ content: String) -> String? {
        try? EventValidator.validate(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: content, connectionToken: "c"
        )).messageId
    }

    @Test("Generated receipt contents: the same messageId, or the same refusal, as JSONSerialization's")
    func againstJSONSerialization() {
        var random = SeededGenerator(state: 31)
        let keys = ["messageId", "messageid", "other"]
        let values = ["\"m-1\"", "\"\"", "\"\\u00e9\"", "null", "true", "1", "{}", "[\"a\"]", "\"a\\\"b\""]
        var found = 0
        for _ in 0..<5_000 {
            let count = Int.random(in: 0...3, using: &random)
            var content = "{" + (0..<count).map { _ in "\"\(keys.randomElement(using: &random)!)\":\(values.randomElement(using: &random)!)" }.joined(separator: ",") + "}"
            if Int.random(in: 0..<6, using: &random) == 0 { content = String(content.dropLast()) }
            let expected = Self.reference(content)
            if expected != nil { found += 1 }
            #expect(Self.validated(content) == expected, "\(content)")
        }
        #expect(found > 500, "\(found)")
    }
}
