import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantTestSupport
import ParticipantWire
import Testing

/// Messages (SendMessage) through the daemon: `POST /v1/messages`, the SDK's
/// `POST /participant/message` and `participantctl send-message`, delivered over real HTTP to
/// the stand-in.
@Suite struct MessageEndToEndTests {
    let connection = "conn-token-SECRET-\(UUID().uuidString)"

    func participantctl(_ daemon: TestDaemon, _ arguments: [String]) async throws -> (Int32, String, String) {
        try await ChildProcess.run(try BuiltProduct.path("participantctl"), arguments, environment: ["PARTICIPANTD_SOCKET": daemon.configuration.socketPath])
    }

    @Test("Every message content type reaches SendMessage once, with its ClientToken, and its record says kind message and the service's processing status",
          arguments: MessageContentType.allCases)
    func everyContentType(type: MessageContentType) async throws {
        try await TestDaemon.with { daemon in
            let content = type == .plainText || type == .markdown ? "Hello *there*" : #"{"data":{"replyMessage":{"title":"ok"}}}"#
            let answer = try await daemon.client.submit(MessageSubmission(contentType: type.rawValue, content: content, clientToken: "msg-\(type)", connectionToken: connection))
            #expect(answer.created)
            #expect(answer.event.kind == .message)
            let sent = try await daemon.waitForEvent("msg-\(type)") { $0.state == .sent }
            let accepted = try #require(daemon.standIn.acceptedMessages.first)
            #expect(daemon.standIn.acceptedMessages.count == 1)
            #expect(daemon.standIn.acceptedEvents.isEmpty)
            #expect(accepted.contentType == type.rawValue && accepted.content == content && accepted.bearer == connection)
            #expect(sent.id == accepted.id)
            #expect(sent.processingStatus == "PROCESSING")
            #expect(sent.kind == .message)
            #expect(daemon.standIn.invalidRequestCount == 0)
        }
    }

    @Test("A chat's messages reach the service in the order they were acknowledged, with its receipts and typing between them in place")
    func orderWithinAChat() async throws {
        try await TestDaemon.with { daemon in
            var tokens: [String] = []
            for index in 1...6 {
                let message = try await daemon.client.submit(MessageSubmission(
                    contentType: MessageContentType.plainText.rawValue, content: "\(index)/6", clientToken: "m\(index)", connectionToken: connection
                ))
                tokens.append(message.event.clientToken)
                let read = try await daemon.client.submit(EventSubmission(
                    contentType: EventContentType.messageRead.rawValue, content: receipt("agent-\(index)"), clientToken: "r\(index)", connectionToken: connection
                ))
                tokens.append(read.event.clientToken)
            }
            for token in tokens { _ = try await daemon.waitForEvent(token) { $0.state == .sent } }
            let order = daemon.standIn.requests.filter { $0.problem == nil }.compactMap(\.clientToken)
            #expect(order == tokens)
            #expect(daemon.standIn.acceptedMessages.map(\.content) == (1...6).map { "\($0)/6" })
        }
    }

    @Test("POST /v1/messages refuses bad input naming the field and the rule, and a ClientToken used for an event with 409")
    func refusals() async throws {
        try await TestDaemon.with { daemon in
            let socket = RawSocketClient(path: daemon.configuration.socketPath)
            let tooLong = String(repeating: "a", count: 1_025)
            let (status, body) = try await socket.request(method: "POST", path: "/v1/messages", body: #"{"contentType": "text/plain", "content": "\#(tooLong)", "connectionToken": "c"}"#)
            #expect(status == 400)
            let error = try JSONDecoder().decode(ErrorBody.self, from: body)
            #expect(error.message.contains("content") && error.message.contains("1024") && error.message.contains("text/plain"), "\(error.message)")

            let (typeStatus, typeBody) = try await socket.request(method: "POST", path: "/v1/messages", body: #"{"contentType": "application/vnd.amazonaws.connect.event.typing", "content": "x", "connectionToken": "c"}"#)
            #expect(typeStatus == 400)
            #expect(String(decoding: typeBody, as: UTF8.self).contains("contentType"))

            let (unknownStatus, unknownBody) = try await socket.request(method: "POST", path: "/v1/messages", body: #"{"contentType": "text/plain", "content": "x", "connectionToken": "c", "clientTokn": "t"}"#)
            #expect(unknownStatus == 400)
            #expect(String(decoding: unknownBody, as: UTF8.self).contains("clientTokn"))

            _ = try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "shared", connectionToken: connection))
            let (mismatch, mismatchBody) = try await socket.request(
                method: "POST", path: "/v1/messages", body: #"{"contentType": "text/plain", "content": "hi", "clientToken": "shared", "connectionToken": "\#(connection)"}"#
            )
            #expect(mismatch == 409)
            let mismatchError = try JSONDecoder().decode(ErrorBody.self, from: mismatchBody)
            #expect(mismatchError.code == APIErrorCode.idempotentParameterMismatch)
            #expect(mismatchError.message.contains("already used for an event with a different kind (an event, not a message)"), "\(mismatchError.message)")
            // Shown by the one route for every kind.
            #expect(try await daemon.client.event(clientToken: "shared").kind == .event)
        }
    }

    @Test("The SDK's SendMessage (POST /participant/message) answers with the service's Id, AbsoluteTime and MessageMetadata")
    func sdkRoute() async throws {
        try await TestDaemon.with(configure: { $0.api.deliveryWait = TestDaemon.patientDeliveryWait }) { daemon in
            let client = RawSocketClient(path: daemon.configuration.socketPath, timeout: TestDaemon.patientDeliveryWait + .seconds(15))
            let body = #"{"ContentType": "text/markdown", "Content": "**hi**", "ClientToken": "sdk-message-1"}"#
            let (status, headers, data) = try await client.requestWithHeaders(method: "POST", path: "/participant/message", body: body, headers: [("X-Amz-Bearer", connection)])
            #expect(status == 200)
            #expect(headers["x-participantd-event-state"] == "sent")
            let output = try JSONDecoder().decode(SendMessageOutput.self, from: data)
            let accepted = try #require(daemon.standIn.acceptedMessages.first)
            #expect(output.id == accepted.id && output.absoluteTime == accepted.absoluteTime)
            #expect(output.messageMetadata?.messageProcessingStatus == "PROCESSING")

            let (badStatus, badHeaders, badData) = try await client.requestWithHeaders(method: "POST", path: "/participant/message", body: #"{"ContentType": "text/plain"}"#, headers: [("X-Amz-Bearer", connection)])
            #expect(badStatus == 400)
            #expect(badHeaders["x-amzn-errortype"] == "ValidationException")
            #expect(String(decoding: badData, as: UTF8.self).contains("Content"))
        }
    }

    @Test("participantctl send-message prints the record; --wait prints Id, AbsoluteTime and MessageMetadata as the AWS CLI does")
    func participantctlSendMessage() async throws {
        try await TestDaemon.with { daemon in
            let (status, output, _) = try await participantctl(daemon, [
                "send-message", "--content-type", "text/plain", "--content", "hello", "--connection-token", connection, "--client-token", "ctl-m1",
            ])
            #expect(status == 0)
            let record = try WireCoding.decoder().decode(EventRecord.self, from: Data(output.utf8))
            #expect(record.clientToken == "ctl-m1" && record.kind == .message)

            let (waitStatus, waitOutput, _) = try await participantctl(daemon, [
                "send-message", "--cli-input-json", #"{"ContentType": "text/plain", "Content": "second", "ConnectionToken": "\#(connection)"}"#, "--wait",
            ])
            #expect(waitStatus == 0)
            let sent = try JSONDecoder().decode(SendMessageOutput.self, from: Data(waitOutput.utf8))
            #expect(daemon.standIn.acceptedMessages.contains { $0.id == sent.id && $0.content == "second" })
            #expect(sent.messageMetadata?.messageProcessingStatus == "PROCESSING")

            let (missing, _, missingError) = try await participantctl(daemon, ["send-message", "--content-type", "text/plain", "--connection-token", "c"])
            #expect(missing == CLIExitCode.usage)
            #expect(missingError.contains("--content"))
            let (skeleton, skeletonOutput, _) = try await participantctl(daemon, ["send-message", "--generate-cli-skeleton", "output"])
            #expect(skeleton == 0 && skeletonOutput.contains("MessageProcessingStatus"))
        }
    }

    /// Contents no test would think of: scalars from every plane (noncharacters and private use
    /// included, surrogates excluded: no string holds them), combining marks piled on a base,
    /// controls other than U+0000, line and paragraph separators, text-reordering marks; each
    /// 1 to `maxLength` scalars long.
    static func corpus(count: Int, maxLength: Int, seed: UInt64) -> [String] {
        var random = SeededGenerator(state: seed)
        func scalar() -> Unicode.Scalar {
            let ranges: [ClosedRange<UInt32>] = [
                0x01...0x7F, 0x80...0x9F, 0xA0...0x2FF, 0x300...0x36F, 0x2028...0x202E, 0x4E00...0x9FFF,
                0xE000...0xF8FF, 0xFFF0...0xFFFF, 0x10000...0x1FFFF, 0x20000...0xEFFFF, 0xF0000...0x10FFFF,
            ]
            while true {
                let range = ranges[Int.random(in: 0..<ranges.count, using: &random)]
                if let scalar = Unicode.Scalar(UInt32.random(in: range, using: &random)) { return scalar }
            }
        }
        var texts: [String] = []
        for index in 0..<count {
            let length = index == 0 ? maxLength : Int.random(in: 1...maxLength, using: &random)
            var text = String.UnicodeScalarView()
            for position in 0..<length {
                // Every fourth text piles combining marks on a base letter.
                text.append(index % 4 == 1 && position > 0 ? Unicode.Scalar(UInt32.random(in: 0x300...0x36F, using: &random))! : scalar())
            }
            texts.append(String(text))
        }
        // The longest allowed, each scalar four bytes in UTF-8; and a decomposed é beside a composed one.
        texts.append(String(repeating: "\u{1F600}", count: maxLength))
        texts.append("e\u{301} \u{E9}")
        return texts
    }

    @Test("Acknowledged = sent: every content of a generated corpus (every plane, combining marks, controls, the longest allowed) reaches SendMessage byte for byte; one scalar more is refused naming the field")
    func byteEquality() async throws {
        let maxLength = MessageContentType.plainText.maxContentLength
        let texts = Self.corpus(count: 60, maxLength: maxLength, seed: 20_261_206)
        try await TestDaemon.with { daemon in
            for (index, text) in texts.enumerated() {
                let answer = try await daemon.client.submit(MessageSubmission(
                    contentType: MessageContentType.plainText.rawValue, content: text, clientToken: "corpus-\(index)", connectionToken: "corpus-chat-\(index % 5)"
                ))
                #expect(Array(answer.event.content?.utf8 ?? "".utf8) == Array(text.utf8), "the acknowledged record, \(index)")
            }
            try await eventually(timeout: .seconds(60), "every message sent") { daemon.standIn.acceptedMessages.count == texts.count }
            let received = Dictionary(uniqueKeysWithValues: daemon.standIn.acceptedMessages.map { ($0.clientToken, $0.content ?? "") })
            let differing = texts.indices.filter { Array(received["corpus-\($0)"]?.utf8 ?? "".utf8) != Array(texts[$0].utf8) }
            #expect(differing.isEmpty, "sent not as acknowledged: \(differing)")
            #expect(daemon.standIn.invalidRequestCount == 0)

            // One scalar more than allowed, and U+0000: refused, naming the field.
            for text in [String(repeating: "\u{1F600}", count: maxLength + 1), "a\u{0}b"] {
                do {
                    _ = try await daemon.client.submit(MessageSubmission(contentType: MessageContentType.plainText.rawValue, content: text, connectionToken: "corpus-chat-0"))
                    Issue.record("accepted: \(text.unicodeScalars.count) scalars")
                } catch {
                    guard case .api(400, let body)? = error as? DaemonClientError else { Issue.record("\(error)"); continue }
                    #expect(body.message.contains("content"), "\(body)")
                }
            }
        }
    }
}
