import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantWire
import ParticipantTestSupport
import Testing

/// A full outbox seen from outside: 507 over the socket, health, nothing refused sent.
@Suite struct StorageFullEndToEndTests {
    @Test("Over the socket: 507 StorageFull (Retry-After), health degraded, every 202 stored and sent, none of the refused")
    func daemonAnswers507() async throws {
        try await TestDaemon.with(configure: { $0.limits.maxDatabaseMegabytes = 1 }) { daemon in
            let client = RawSocketClient(path: daemon.configuration.socketPath)
            var acknowledged: [String] = []
            var refused: [String] = []
            for index in 0..<400 where refused.count < 3 {
                let token = "socket-full-\(index)"
                let body = try String(decoding: JSONEncoder().encode(EventSubmission(
                    contentType: EventContentType.messageRead.rawValue,
                    content: #"{"messageId": "\#(index)", "pad": "\#(String(repeating: "x", count: 12_000))"}"#,
                    clientToken: token, connectionToken: "conn-\(index)"
                )), as: UTF8.self)
                let (status, headers, answer) = try await client.requestWithHeaders(method: "POST", path: "/v1/events", body: body)
                switch status {
                case 202: acknowledged.append(token)
                case 507:
                    refused.append(token)
                    #expect(try JSONDecoder().decode(ErrorBody.self, from: answer).code == "StorageFull")
                    #expect(headers["retry-after"] != nil)
                default: Issue.record("unexpected \(status): \(String(decoding: answer, as: UTF8.self))")
                }
            }
            #expect(refused.count == 3)
            #expect(acknowledged.count > 10)
            let health = try await daemon.client.health()
            #expect(health.status == "degraded")
            #expect(health.problems.contains { $0.contains("storage is full") })

            for token in refused {
                await #expect(throws: DaemonClientError.self) { try await daemon.client.event(clientToken: token) }
            }
            for token in acknowledged {
                #expect(try await daemon.client.event(clientToken: token).clientToken == token)
            }
            // The room kept back lets the sender record outcomes: delivery goes on.
            try await eventually(timeout: .seconds(60), "every acknowledged event sent") {
                Set(daemon.standIn.acceptedEvents.map(\.clientToken)).isSuperset(of: acknowledged)
            }
            #expect(daemon.standIn.invalidRequestCount == 0)
        }
    }
}
