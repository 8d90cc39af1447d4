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

/// Chats named by a participant token, through the daemon's socket to the stand-in's
/// CreateParticipantConnection: connection tokens that expire, chats that end.
@Suite struct ParticipantTokenEndToEndTests {
    let participant = "participant-token-SECRET-\(UUID().uuidString)"

    func participantctl(_ daemon: TestDaemon, _ arguments: [String]) async throws -> (Int32, String, String) {
        try await ChildProcess.run(try BuiltProduct.path("participantctl"), arguments, environment: ["PARTICIPANTD_SOCKET": daemon.configuration.socketPath])
    }

    func message(_ token: String) -> MessageSubmission {
        MessageSubmission(contentType: "text/plain", content: token, clientToken: token, connectionToken: nil, participantToken: participant)
    }

    @Test("A connection is created once and used; past the renewal point a new one is made; no request leaves with an expired token")
    func createdAndRenewed() async throws {
        try await TestDaemon.with { daemon in
            // Long enough that a request checked just before the renewal point still arrives
            // before the Expiry on a loaded machine (2 s, with its 0.4 s margin, was not once,
            // with two suites at once on two cores).
            let lifetime = 10.0, renewalMargin = lifetime / 5
            daemon.standIn.setConnectionLifetime(.seconds(lifetime))
            _ = try await daemon.client.submit(message("m1"))
            _ = try await daemon.client.submit(message("m2"))
            for token in ["m1", "m2"] { _ = try await daemon.waitForEvent(token) { $0.state == .sent } }
            let first = try #require(daemon.standIn.connectionCreations.first)
            #expect(first.participantToken == participant && first.connectParticipant)
            // Past the renewal point of the last connection (a fifth of its lifetime before its
            // Expiry): the next message renews.
            let last = try #require(daemon.standIn.connectionCreations.last)
            try await eventually(timeout: .seconds(30), "past the renewal point") { Date() > last.expiry.addingTimeInterval(-renewalMargin) }
            _ = try await daemon.client.submit(message("m3"))
            _ = try await daemon.waitForEvent("m3") { $0.state == .sent }
            let creations = daemon.standIn.connectionCreations
            #expect(creations.count >= 2)
            #expect(daemon.standIn.acceptedMessages.last?.bearer == creations.last?.connectionToken)
            // Every message went with a connection made for this participant, and no connection
            // was made before the last one reached its renewal point: one creation per renewal.
            #expect(daemon.standIn.acceptedMessages.allSatisfy { message in creations.contains { $0.connectionToken == message.bearer } })
            for (previous, next) in zip(creations, creations.dropFirst()) {
                #expect(next.createdAt >= previous.expiry.addingTimeInterval(-renewalMargin), "renewed \(previous.expiry.timeIntervalSince(next.createdAt)) s before its Expiry")
            }
            #expect(daemon.standIn.expiredTokenUses == 0)
            // The participant token is a credential: never in a record.
            let record = try await daemon.client.event(clientToken: "m3")
            #expect(!String(decoding: try WireCoding.encoder().encode(record), as: UTF8.self).contains(participant))
            // Nor in the log, nor the connection tokens made from it.
            #expect(!daemon.logText.isEmpty)
            #expect(!daemon.logText.contains(participant))
            for creation in daemon.standIn.connectionCreations { #expect(!daemon.logText.contains(creation.connectionToken)) }
        }
    }

    @Test("A chat ended at the service fails its waiting items with a clear reason after one request, and refuses new ones")
    func chatEnded() async throws {
        try await TestDaemon.with { daemon in
            daemon.standIn.endParticipant(participant)
            _ = try await daemon.client.submit(message("a"))
            // The sender may already have tried "a" and blocked the chat when "b" arrives: then
            // "b" is refused at once (410), else it is stored and fails with "a". Either way it is
            // never sent and its client is told.
            var bStored = true
            do {
                _ = try await daemon.client.submit(EventSubmission(
                    contentType: EventContentType.typing.rawValue, clientToken: "b", connectionToken: nil, participantToken: participant
                ))
            } catch DaemonClientError.api(let status, let error) where status == 410 && error.code == APIErrorCode.connectionRejected {
                #expect(error.message.contains("CreateParticipantConnection refused the participant token"), "\(error.message)")
                bStored = false
            }
            let failed = try await daemon.waitForEvent("a") { $0.state == .failed }
            #expect(failed.lastError?.message.contains("CreateParticipantConnection refused the participant token") == true, "\(failed.lastError?.message ?? "")")
            if bStored {
                #expect(try await daemon.client.event(clientToken: "b").state == .failed)
            }
            #expect(daemon.standIn.requests.filter { $0.bearer == participant }.count <= 2)
            let (status, body) = try await RawSocketClient(path: daemon.configuration.socketPath).request(
                method: "POST", path: "/v1/messages", body: #"{"contentType": "text/plain", "content": "late", "participantToken": "\#(participant)"}"#
            )
            #expect(status == 410, "\(String(decoding: body, as: UTF8.self))")
        }
    }

    @Test("Exactly one of connectionToken and participantToken; connectParticipant goes with a participant token")
    func credentialRules() async throws {
        try await TestDaemon.with { daemon in
            let socket = RawSocketClient(path: daemon.configuration.socketPath)
            for (body, field) in [
                (#"{"contentType": "text/plain", "content": "x"}"#, "connectionToken"),
                (#"{"contentType": "text/plain", "content": "x", "connectionToken": "c", "participantToken": "p"}"#, "participantToken"),
                (#"{"contentType": "text/plain", "content": "x", "connectionToken": "c", "connectParticipant": true}"#, "connectParticipant"),
                (#"{"contentType": "text/plain", "content": "x", "participantToken": "p\u0001"}"#, "participantToken"),
            ] {
                let (status, answer) = try await socket.request(method: "POST", path: "/v1/messages", body: body)
                #expect(status == 400)
                let error = try JSONDecoder().decode(ErrorBody.self, from: answer)
                #expect(error.message.hasPrefix(field), "\(error.message)")
            }
        }
    }

    @Test("participantctl: --participant-token in place of --connection-token, --no-connect-participant")
    func participantctlParticipantToken() async throws {
        try await TestDaemon.with { daemon in
            let (status, _, errors) = try await participantctl(daemon, [
                "send-message", "--content-type", "text/plain", "--content", "hi", "--participant-token", participant, "--no-connect-participant", "--wait",
            ])
            #expect(status == 0, "\(errors)")
            #expect(daemon.standIn.connectionCreations.map(\.connectParticipant) == [false])
            let (disconnect, _, disconnectErrors) = try await participantctl(daemon, ["disconnect-participant", "--participant-token", participant, "--wait"])
            #expect(disconnect == 0, "\(disconnectErrors)")
            #expect(daemon.standIn.disconnects.count == 1)
        }
    }
}
