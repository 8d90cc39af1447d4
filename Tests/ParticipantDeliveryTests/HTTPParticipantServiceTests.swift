import AsyncHTTPClient
import ParticipantDelivery
import ParticipantServiceStandIn
import ParticipantWire
import Testing

/// Each operation the sender calls, over real HTTP to the stand-in: its path, its body, its answer.
@Suite struct HTTPParticipantServiceTests {
    func withService(_ body: (HTTPParticipantService, ParticipantServiceStandIn) async throws -> Void) async throws {
        let standIn = try await ParticipantServiceStandIn.start()
        let configuration = HTTPParticipantService.Configuration(endpoint: standIn.endpoint)
        let client = try HTTPParticipantService.makeHTTPClient(configuration)
        do {
            try await body(HTTPParticipantService(configuration: configuration, client: client), standIn)
        } catch {
            try await client.shutdown()
            try await standIn.stop()
            throw error
        }
        try await client.shutdown()
        try await standIn.stop()
    }

    func message(_ contentType: String = "text/markdown", content: String = "**shipped**", token: String = "m-1") -> ServiceRequest {
        ServiceRequest(operation: .sendMessage, contentType: contentType, content: content, clientToken: token, connectionToken: "conn-1")
    }

    @Test("SendMessage goes to /participant/message and is accepted with the service's Id; the same ClientToken gets the same Id")
    func sendMessage() async throws {
        try await withService { service, standIn in
            guard case .accepted(let id, let absoluteTime, let processingStatus) = await service.send(message()) else {
                Issue.record("not accepted: \(standIn.requests.last?.problem ?? "")")
                return
            }
            #expect(!absoluteTime.isEmpty)
            #expect(processingStatus == "PROCESSING", "the answer's MessageMetadata.MessageProcessingStatus")
            #expect(standIn.requests.last?.path == "/participant/message")
            #expect(standIn.acceptedMessages.map(\.id) == [id])
            #expect(standIn.acceptedMessages.first?.content == "**shipped**" && standIn.acceptedMessages.first?.bearer == "conn-1")
            #expect(standIn.acceptedEvents.isEmpty, "a message is not an event")
            guard case .accepted(let again, _, _) = await service.send(message()) else { Issue.record("not accepted again"); return }
            #expect(again == id)
            #expect(standIn.acceptedMessages.first?.acceptCount == 2)
        }
    }

    @Test("A message the service's rules refuse is rejected for good with its ValidationException")
    func refusedMessage() async throws {
        try await withService { service, standIn in
            let tooLong = await service.send(message("text/plain", content: String(repeating: "x", count: 1_025)))
            guard case .rejected(let error, let status) = tooLong else { Issue.record("\(tooLong)"); return }
            #expect(status == 400 && error.code == "ValidationException")
            #expect(error.message.contains("1 to 1024 characters for text/plain"))
            let eventType = await service.send(message("application/vnd.amazonaws.connect.event.typing", content: "x"))
            guard case .rejected = eventType else { Issue.record("\(eventType)"); return }
            #expect(standIn.acceptedMessages.isEmpty)
        }
    }
}
