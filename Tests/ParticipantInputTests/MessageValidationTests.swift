import Foundation
@testable import ParticipantInput
import ParticipantWire
import Testing

/// SendMessage's input rules: the service's content types and each one's length, the ClientToken,
/// the connection token and the instance as for events, every refusal naming the field and the rule.
@Suite struct MessageValidationTests {
    func submission(_ contentType: String? = "text/plain", content: String? = "hello", clientToken: String? = nil,
                    connectionToken: String? = "conn", instance: String? = nil) -> MessageSubmission {
        MessageSubmission(contentType: contentType, content: content, clientToken: clientToken, connectionToken: connectionToken, instance: instance)
    }

    @Test("Each content type takes content up to its own length, and refuses one character more", arguments: [
        (MessageContentType.plainText, 1_024), (.markdown, 1_024), (.json, 12_000), (.interactiveResponse, 12_288),
    ])
    func lengthPerType(type: MessageContentType, length: Int) throws {
        // Counted in Unicode scalars: an emoji is one.
        let longest = String(repeating: "👍", count: length)
        let message = try MessageValidator.validate(submission(type.rawValue, content: longest))
        #expect(message.contentType == type && message.content == longest && message.instance == InstanceName.defaultName)
        let error = #expect(throws: ValidationError.self) { try MessageValidator.validate(submission(type.rawValue, content: longest + "x")) }
        #expect(error?.field == "content")
        #expect(error?.rule == "must be at most \(length) characters long (got \(length + 1)) for \(type.rawValue)")
    }

    @Test("A refusal names the field and the rule", arguments: [
        (nil as String?, "hi" as String?, nil as String?, "conn" as String?, nil as String?, "contentType", "is required" as String?),
        ("application/vnd.amazonaws.connect.event.typing", "hi", nil, "conn", nil, "contentType", "must be one of text/plain, text/markdown, application/json, application/vnd.amazonaws.connect.message.interactive.response for a message"),
        ("text/plain", nil, nil, "conn", nil, "content", "is required for a message"),
        ("text/plain", "", nil, "conn", nil, "content", "must be at least 1 character long for text/plain"),
        ("text/plain", "hi", "", "conn", nil, "clientToken", "must be at least 1 character long"),
        ("text/plain", "hi", String(repeating: "t", count: 501), "conn", nil, "clientToken", "must be at most 500 characters long (got 501)"),
        ("text/plain", "hi", nil, nil, nil, "connectionToken", "is required (or participantToken in its place)"),
        ("text/plain", "hi", nil, "co\r\nnn", nil, "connectionToken", "must not contain control characters (it is sent as the X-Amz-Bearer header)"),
        ("text/plain", "hi", nil, "conn", "Bad Name", "instance", nil),
    ])
    func refusals(contentType: String?, content: String?, clientToken: String?, connectionToken: String?, instance: String?, field: String, rule: String?) {
        let error = #expect(throws: ValidationError.self) {
            try MessageValidator.validate(submission(contentType, content: content, clientToken: clientToken, connectionToken: connectionToken, instance: instance))
        }
        #expect(error?.field == field)
        if let rule { #expect(error?.rule == rule) }
    }

    @Test("POST /v1/messages' body: an unknown field is refused naming the one it may have meant; a good one decodes")
    func decoding() throws {
        let good = try RequestDecoding.messageRequest(body: Data(#"{"contentType":"text/markdown","content":"**hi**","clientToken":"m1","connectionToken":"c","instance":"eu"}"#.utf8))
        #expect(good == ValidatedMessage(contentType: .markdown, content: "**hi**", clientToken: "m1", connectionToken: "c", instance: "eu"))
        let misspelt = #expect(throws: RequestError.self) {
            try RequestDecoding.messageRequest(body: Data(#"{"contentType":"text/plain","contnet":"hi","connectionToken":"c"}"#.utf8))
        }
        #expect(misspelt?.description.contains("contnet is not a field of a message: did you mean content?") == true, "\(String(describing: misspelt))")
        let notObject = #expect(throws: RequestError.self) { try RequestDecoding.messageRequest(body: Data("[1]".utf8)) }
        #expect(notObject?.description.contains("JSON object") == true)
    }
}
