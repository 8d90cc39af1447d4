import Foundation
@testable import ParticipantInput
import ParticipantWire
import ParticipantTestSupport
import Testing

@Suite struct ValidationTests {
    func submission(
        _ type: EventContentType? = .typing, content: String? = nil, clientToken: String? = nil, connectionToken: String? = "c"
    ) -> EventSubmission {
        EventSubmission(contentType: type?.rawValue, content: content, clientToken: clientToken, connectionToken: connectionToken)
    }

    func rule(_ submission: EventSubmission) -> ValidationError? {
        do {
            _ = try EventValidator.validate(submission)
            return nil
        } catch {
            return error
        }
    }

    @Test func acceptsEveryContentType() throws {
        for type in EventContentType.allCases {
            let event = try EventValidator.validate(submission(type, content: type.isReceipt ? receipt("m-1") : nil))
            #expect(event.contentType == type)
            #expect(event.warnings.isEmpty == (type != .connectionAcknowledged))
        }
    }

    @Test func requiredFields() {
        #expect(rule(submission(nil)) == ValidationError(field: "contentType", rule: "is required"))
        #expect(rule(submission(connectionToken: nil)) == ValidationError(field: "connectionToken", rule: "is required (or participantToken in its place)"))
    }

    @Test func contentTypeRules() {
        #expect(rule(EventSubmission(contentType: "", connectionToken: "c"))?.rule == "must be at least 1 character long")
        #expect(rule(EventSubmission(contentType: String(repeating: "a", count: 101), connectionToken: "c"))?.rule.hasPrefix("must be at most 100") == true)
        #expect(rule(EventSubmission(contentType: "application/vnd.amazonaws.connect.event.TYPING", connectionToken: "c"))?.rule.hasPrefix("must be one of") == true)
    }

    @Test func lengthLimitsAreInclusive() {
        #expect(rule(submission(content: String(repeating: "a", count: 16_384))) == nil)
        #expect(rule(submission(content: String(repeating: "a", count: 16_385)))?.field == "content")
        #expect(rule(submission(content: "")) == ValidationError(field: "content", rule: "must be at least 1 character long"))
        #expect(rule(submission(clientToken: String(repeating: "t", count: 500))) == nil)
        #expect(rule(submission(clientToken: String(repeating: "t", count: 501)))?.field == "clientToken")
        #expect(rule(submission(clientToken: ""))?.field == "clientToken")
        #expect(rule(submission(connectionToken: String(repeating: "c", count: 1_000))) == nil)
        #expect(rule(submission(connectionToken: String(repeating: "c", count: 1_001)))?.field == "connectionToken")
        // Counted in Unicode scalars, as botocore counts: 16,384 emoji are within the limit.
        #expect(rule(submission(content: String(repeating: "😀", count: 16_384))) == nil)
    }

    @Test("A ClientToken with a control character (C0, DEL, C1) is refused, naming it; other characters are kept")
    func clientTokensArePrintable() {
        #expect(rule(submission(clientToken: "row\u{1B}[2J")) == ValidationError(field: "clientToken", rule: "must not contain control characters (found U+001B)"))
        #expect(rule(submission(clientToken: "a\nb"))?.rule == "must not contain control characters (found U+000A)")
        #expect(rule(submission(clientToken: "a\u{7F}"))?.field == "clientToken")
        #expect(rule(submission(clientToken: "csi\u{9B}31m"))?.rule == "must not contain control characters (found U+009B)")
        #expect(rule(submission(clientToken: "weird token/with?chars&é 😀")) == nil)
    }

    @Test("Content with U+0000 is refused, naming the field: SQLite would store and send it cut short")
    func contentWithoutNUL() {
        #expect(rule(submission(content: "a\u{0}b")) == ValidationError(field: "content", rule: "must not contain U+0000 (NUL): it could not be stored and sent whole"))
        #expect(rule(submission(.messageRead, content: #"{"messageId":"m\#u{0}1"}"#))?.field == "content")
        #expect(throws: ValidationError(field: "content", rule: "must not contain U+0000 (NUL): it could not be stored and sent whole")) {
            try MessageValidator.validate(MessageSubmission(contentType: "text/plain", content: "a\u{0}b", connectionToken: "c"))
        }
    }

    @Test func receiptsNeedAJSONObjectWithAMessageId() {
        for type in [EventContentType.messageDelivered, .messageRead] {
            #expect(rule(submission(type, content: receipt("abc"))) == nil)
            for bad in [nil, "abc", "[]", "{}", "{\"messageId\": \"\"}", "{\"messageId\": 5}", "{\"MessageId\": \"x\"}"] {
                #expect(rule(submission(type, content: bad))?.field == "content", "\(bad ?? "nil")")
            }
        }
    }

    @Test func connectionTokenCannotCarryControlCharacters() {
        #expect(rule(submission(connectionToken: "abc\r\nX-Evil: 1"))?.field == "connectionToken")
    }
}

@Suite struct UnknownFieldTests {
    static let typing = EventContentType.typing.rawValue

    @Test("POST /v1/events refuses a field it does not know, naming it and the field it may have meant")
    func daemonRequestRefusesUnknownFields() throws {
        let body = Data(#"{"contentType":"\#(Self.typing)","connectionToken":"c","clientTokn":"retry-1"}"#.utf8)
        #expect(throws: RequestError.invalid(ValidationError(
            field: "clientTokn",
            rule: "is not a field of an event: did you mean clientToken? the fields are contentType, content, clientToken, connectionToken, instance, participantToken, connectParticipant"
        ))) { try RequestDecoding.daemonRequest(body: body) }
        let far = Data(#"{"contentType":"\#(Self.typing)","connectionToken":"c","priority":"high"}"#.utf8)
        #expect(throws: RequestError.invalid(ValidationError(
            field: "priority", rule: "is not a field of an event: the fields are contentType, content, clientToken, connectionToken, instance, participantToken, connectParticipant"
        ))) { try RequestDecoding.daemonRequest(body: far) }
        // The known fields alone still pass.
        let good = Data(#"{"contentType":"\#(Self.typing)","connectionToken":"c","clientToken":"retry-1"}"#.utf8)
        #expect(try RequestDecoding.daemonRequest(body: good).clientToken == "retry-1")
    }

    @Test("The SDK route keeps the service's leniency: a member it does not know is ignored")
    func sendEventRequestIgnoresUnknownMembers() throws {
        let body = Data(#"{"ContentType":"\#(Self.typing)","ClientToken":"sdk-1","SomeNewMember":1}"#.utf8)
        #expect(try RequestDecoding.sendEventRequest(body: body, bearer: "c").clientToken == "sdk-1")
    }

    @Test("Near names: an edit or a swap away is suggested, a far one is not")
    func nearestName() {
        let keys = ["region", "endpoint", "sender.maxInFlight"]
        #expect(NearestName.suggestion(for: "regoin", among: keys) == "region")
        #expect(NearestName.suggestion(for: "sender.maxInFligt", among: keys) == "sender.maxInFlight")
        #expect(NearestName.suggestion(for: "colour", among: keys) == nil)
    }

    @Test("Content-Type: JSON in any of its spellings passes; anything else is refused, naming what came")
    func mediaTypes() throws {
        for value in [nil, "", "application/json", "Application/JSON; charset=utf-8", " application/json ;x=y",
                      "application/x-amz-json-1.1", "application/vnd.example+json"] {
            #expect(throws: Never.self, "\(value ?? "nil")") { try RequestDecoding.checkMediaType(value) }
        }
        for value in ["text/plain", "application/jsonx", "application/xml; a=application/json"] {
            #expect(throws: RequestError.self, "\(value)") { try RequestDecoding.checkMediaType(value) }
        }
    }
}

/// Lengths are counted in Unicode scalars, however many bytes each takes.
@Suite struct FieldLengthTests {
    @Test("At the limit in scalars of 1 to 4 bytes: accepted; one scalar more: refused with the scalars counted; empty: refused")
    func scalarsNotBytes() throws {
        for scalar in ["a", "é", "€", "👍"] {
            #expect(throws: Never.self) { try FieldRules.checkLength(String(repeating: scalar, count: 500), field: "clientToken", min: 1, max: 500) }
            #expect(throws: Never.self) { try FieldRules.checkLength(scalar, field: "clientToken", min: 1, max: 500) }
            let over = #expect(throws: ValidationError.self) {
                try FieldRules.checkLength(String(repeating: scalar, count: 501), field: "clientToken", min: 1, max: 500)
            }
            #expect(over?.rule == "must be at most 500 characters long (got 501)", "\(scalar)")
            let short = #expect(throws: ValidationError.self) {
                try FieldRules.checkLength(String(repeating: scalar, count: 2), field: "clientToken", min: 3, max: 500)
            }
            #expect(short?.rule == "must be at least 3 characters long", "\(scalar)")
        }
        #expect(throws: ValidationError.self) { try FieldRules.checkLength("", field: "content", min: 1, max: 1_024) }
        // A flag of two scalars (8 bytes): two characters, as botocore counts them.
        #expect(throws: Never.self) { try FieldRules.checkLength("🇫🇷", field: "content", min: 2, max: 2) }
    }
}
