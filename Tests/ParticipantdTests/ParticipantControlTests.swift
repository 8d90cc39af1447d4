import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantWire
import ParticipantTestSupport
import Testing

/// The built `participantctl` against a daemon on a temporary socket.
@Suite struct ParticipantControlTests {
    let typing = EventContentType.typing.rawValue

    func participantctl(_ daemon: TestDaemon?, _ arguments: [String]) async throws -> (Int32, String, String) {
        let socket = daemon?.configuration.socketPath ?? "/tmp/no-such-participantd.sock"
        return try await ChildProcess.run(try BuiltProduct.path("participantctl"), arguments, environment: ["PARTICIPANTD_SOCKET": socket])
    }

    @Test("send-event prints the stored record; --wait prints Id and AbsoluteTime as the AWS CLI does")
    func sendEvent() async throws {
        try await TestDaemon.with { daemon in
            let (status, output, _) = try await participantctl(daemon, [
                "send-event", "--content-type", typing, "--connection-token", "ctl-connection", "--client-token", "ctl-1",
            ])
            #expect(status == 0)
            let record = try WireCoding.decoder().decode(EventRecord.self, from: Data(output.utf8))
            #expect(record.clientToken == "ctl-1")
            #expect(record.state == .queued || record.state == .sending || record.state == .sent)

            let (waitStatus, waitOutput, _) = try await participantctl(daemon, [
                "send-event", "--cli-input-json", #"{"ContentType": "\#(EventContentType.messageRead.rawValue)", "Content": "{\"messageId\":\"m-9\"}", "ConnectionToken": "ctl-connection"}"#,
                "--wait",
            ])
            #expect(waitStatus == 0)
            let sent = try JSONDecoder().decode(SendEventOutput.self, from: Data(waitOutput.utf8))
            #expect(daemon.standIn.acceptedEvents.contains { $0.id == sent.id && $0.absoluteTime == sent.absoluteTime && $0.content == receipt("m-9") })

            let (statusStatus, statusOutput, _) = try await participantctl(daemon, ["status", "ctl-1"])
            #expect(statusStatus == 0)
            #expect(try WireCoding.decoder().decode(EventRecord.self, from: Data(statusOutput.utf8)).clientToken == "ctl-1")
        }
    }

    @Test("Exit codes: 252 bad parameter, 253 daemon not reachable, 254 refused or failed")
    func exitCodes() async throws {
        try await TestDaemon.with(behavior: { _ in .error(status: 403, code: "AccessDeniedException", message: "the chat has ended") }) { daemon in
            let (missing, _, missingError) = try await participantctl(daemon, ["send-event", "--content-type", typing])
            #expect(missing == 252)
            #expect(missingError.contains("--connection-token"))

            let (invalid, _, invalidError) = try await participantctl(daemon, ["send-event", "--content-type", "text/plain", "--connection-token", "c"])
            #expect(invalid == 252)
            #expect(invalidError.contains("An error occurred (ValidationException) when calling the SendEvent operation: contentType must be one of"))

            let (failed, _, failedError) = try await participantctl(daemon, ["send-event", "--content-type", typing, "--connection-token", "c", "--wait", "10"])
            #expect(failed == 254)
            #expect(failedError.contains("An error occurred (AccessDeniedException) when calling the SendEvent operation: the chat has ended"))

            let (mismatch, _, _) = try await participantctl(daemon, ["send-event", "--content-type", typing, "--connection-token", "other", "--client-token", try await firstToken(daemon)])
            #expect(mismatch == 254)
        }
        let (unreachable, _, unreachableError) = try await participantctl(nil, ["send-event", "--content-type", typing, "--connection-token", "c"])
        #expect(unreachable == 253)
        #expect(unreachableError.contains("participantd is not reachable at /tmp/no-such-participantd.sock"))
    }

    func firstToken(_ daemon: TestDaemon) async throws -> String {
        try #require(daemon.standIn.requests.first?.clientToken)
    }

    @Test("--generate-cli-skeleton prints the AWS CLI's skeletons and sends nothing")
    func skeleton() async throws {
        let (status, output, _) = try await participantctl(nil, ["send-event", "--generate-cli-skeleton"])
        #expect(status == 0)
        #expect(output == SendEventInput.inputSkeleton + "\n")
        let (outputStatus, outputSkeleton, _) = try await participantctl(nil, ["send-event", "--generate-cli-skeleton", "output"])
        #expect(outputStatus == 0)
        #expect(outputSkeleton == SendEventInput.outputSkeleton + "\n")
    }
}
