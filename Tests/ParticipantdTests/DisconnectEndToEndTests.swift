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

/// DisconnectParticipant through the daemon: `POST /v1/disconnect`, the SDK's
/// `POST /participant/disconnect`, `participantctl disconnect-participant`, delivered to the
/// stand-in after everything before it, in a quota of its own.
@Suite struct DisconnectEndToEndTests {
    let connection = "conn-token-SECRET-\(UUID().uuidString)"

    func participantctl(_ daemon: TestDaemon, _ arguments: [String]) async throws -> (Int32, String, String) {
        try await ChildProcess.run(try BuiltProduct.path("participantctl"), arguments, environment: ["PARTICIPANTD_SOCKET": daemon.configuration.socketPath])
    }

    @Test("The disconnect reaches the service after the chat's messages, and the chat then refuses new items with 409 ChatDisconnected")
    func afterTheLastMessage() async throws {
        let gate = ParticipantServiceStandIn.Gate()
        // The first message is held at the stand-in, so that everything after it is still waiting
        // when the disconnect arrives.
        try await TestDaemon.with(behavior: { $0.clientToken == "m1" ? .wait(gate, then: .accept) : .accept }) { daemon in
            for index in 1...3 {
                _ = try await daemon.client.submit(MessageSubmission(contentType: "text/plain", content: "\(index)/3", clientToken: "m\(index)", connectionToken: connection))
            }
            _ = try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "typing", connectionToken: connection))
            _ = try await daemon.waitForEvent("m1") { $0.state == .sending }
            let answer = try await daemon.client.submit(DisconnectSubmission(clientToken: "bye", connectionToken: connection))
            #expect(answer.created && answer.event.kind == .disconnect)
            #expect(try await daemon.client.event(clientToken: "typing").state == .superseded)
            gate.open()
            _ = try await daemon.waitForEvent("bye") { $0.state == .sent }
            // In order of first arrival (m1, held at the gate, may have been sent again after a
            // timeout on a slow machine: with its ClientToken, as every retry).
            var order: [String] = []
            for token in daemon.standIn.requests.filter({ $0.problem == nil }).compactMap(\.clientToken) where !order.contains(token) {
                order.append(token)
            }
            #expect(order == ["m1", "m2", "m3", "bye"])
            #expect(daemon.standIn.disconnects.map(\.bearer) == [connection])
            // stats counts by kind.
            let kinds = try #require(try await daemon.client.stats().countsByKind)
            #expect(kinds["message"]?["sent"] == 3 && kinds["disconnect"]?["sent"] == 1 && kinds["event"]?["superseded"] == 1, "\(kinds)")

            let (status, body) = try await RawSocketClient(path: daemon.configuration.socketPath).request(
                method: "POST", path: "/v1/messages", body: #"{"contentType": "text/plain", "content": "too late", "connectionToken": "\#(connection)"}"#
            )
            #expect(status == 409)
            let error = try JSONDecoder().decode(ErrorBody.self, from: body)
            #expect(error.code == APIErrorCode.chatDisconnected && error.message.contains("bye"), "\(error.message)")
        }
    }

    @Test("Disconnects spend a bucket of their own: they do not wait behind messages for the main quota, and get no 429 from theirs")
    func ownQuota() async throws {
        try await TestDaemon.with(configure: { configuration in
            // The main quota lets one message through every 5 s: 8 need 35 s.
            configuration.sender.quota = QuotaPacer.Configuration(rate: 0.2, burst: 1, minimumRate: 0.1)
            configuration.sender.disconnectQuota = QuotaPacer.Configuration(rate: 3, burst: 5)
        }) { daemon in
            // One token more than the daemon's burst: room for the moment between the daemon's
            // take and the stand-in's count, not for a second burst.
            daemon.standIn.setDisconnectQuota(rate: 3, burst: 6)
            for index in 0..<8 {
                _ = try await daemon.client.submit(MessageSubmission(contentType: "text/plain", content: "hi", clientToken: "m\(index)", connectionToken: "m-chat-\(index)"))
            }
            for index in 0..<8 {
                _ = try await daemon.client.submit(DisconnectSubmission(clientToken: "d\(index)", connectionToken: "d-chat-\(index)"))
            }
            // 8 disconnects at 3/s after a burst of 5: about 1 s, not 35.
            for index in 0..<8 { _ = try await daemon.waitForEvent("d\(index)") { $0.state == .sent } }
            let messagesSent = try await (0..<8).asyncMap { try await daemon.client.event(clientToken: "m\($0)").state }.filter { $0 == .sent }.count
            #expect(messagesSent < 8, "the disconnects went before the messages' quota allowed them all")
            #expect(daemon.standIn.throttledCount == 0, "\(daemon.standIn.throttledRequests)")
        }
    }

    @Test("The SDK's DisconnectParticipant (POST /participant/disconnect) answers {} once sent, and the token then gets the service's 403")
    func sdkRoute() async throws {
        try await TestDaemon.with(configure: { $0.api.deliveryWait = TestDaemon.patientDeliveryWait }) { daemon in
            let client = RawSocketClient(path: daemon.configuration.socketPath, timeout: TestDaemon.patientDeliveryWait + .seconds(15))
            let (status, headers, data) = try await client.requestWithHeaders(method: "POST", path: "/participant/disconnect", body: #"{"ClientToken": "sdk-bye"}"#, headers: [("X-Amz-Bearer", connection)])
            #expect(status == 200)
            #expect(headers["x-participantd-event-state"] == "sent")
            #expect(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "{}")
            #expect(daemon.standIn.disconnects.map(\.clientToken) == ["sdk-bye"])

            // The service's answer to a disconnected participant's token: 403 AccessDeniedException.
            let (late, lateHeaders, _) = try await client.requestWithHeaders(
                method: "POST", path: "/participant/message", body: #"{"ContentType": "text/plain", "Content": "late"}"#, headers: [("X-Amz-Bearer", connection)]
            )
            #expect(late == 403 && lateHeaders["x-amzn-errortype"] == "AccessDeniedException")
        }
    }

    @Test("participantctl disconnect-participant: the record, or with --wait nothing once sent; the AWS CLI's options and skeletons")
    func participantctlDisconnect() async throws {
        try await TestDaemon.with { daemon in
            let (status, output, errors) = try await participantctl(daemon, ["disconnect-participant", "--connection-token", connection, "--client-token", "ctl-bye", "--wait"])
            #expect(status == 0, "\(errors)")
            #expect(output.isEmpty)
            #expect(daemon.standIn.disconnects.map(\.clientToken) == ["ctl-bye"])

            let (other, otherOutput, _) = try await participantctl(daemon, ["disconnect-participant", "--cli-input-json", #"{"ConnectionToken": "another"}"#])
            #expect(other == 0)
            let record = try WireCoding.decoder().decode(EventRecord.self, from: Data(otherOutput.utf8))
            #expect(record.kind == .disconnect)

            let (refused, _, refusedErrors) = try await participantctl(daemon, ["send-message", "--content-type", "text/plain", "--content", "x", "--connection-token", connection])
            #expect(refused == CLIExitCode.refused)
            #expect(refusedErrors.contains("(ChatDisconnected) when calling the SendMessage operation"), "\(refusedErrors)")

            let (bad, _, badErrors) = try await participantctl(daemon, ["disconnect-participant", "--cli-input-json", #"{"ContentType": "x", "ConnectionToken": "c"}"#])
            #expect(bad == CLIExitCode.usage && badErrors.contains("Unknown parameter in input: \"ContentType\", must be one of: ClientToken, ConnectionToken"), "\(badErrors)")
            let (skeleton, skeletonOutput, _) = try await participantctl(daemon, ["disconnect-participant", "--generate-cli-skeleton"])
            #expect(skeleton == 0 && skeletonOutput.contains("\"ConnectionToken\""))
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var values: [T] = []
        for element in self { values.append(try await transform(element)) }
        return values
    }
}
