import ParticipantInput
import Foundation
import Logging
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import ParticipantTestSupport
import Testing

/// Coalescing seen from outside: over the socket, to the stand-in.
@Suite struct CoalescingEndToEndTests {
    @Test("Over the socket: a burst of typing reaches the service once; every event tells what became of it")
    func typingBurstEndToEnd() async throws {
        // The default rules with a window no slow machine outlasts: ten submissions on a loaded CI
        // host once took longer than the default 10 s, and a second typing event was due.
        var rules = CoalescingRules()
        rules.typingInterval = .seconds(3_600)
        try await TestDaemon.with(configure: { $0.coalescing = rules }) { daemon in
            var tokens: [String] = []
            for index in 0..<10 {
                let answer = try await daemon.client.submit(
                    EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "typing-\(index)", connectionToken: "chat")
                )
                #expect(answer.created)
                tokens.append(answer.event.clientToken)
            }
            // Once every one of them is final, nothing more can reach the service.
            try await eventually(timeout: .seconds(15), "all ten final") {
                var final = 0
                for token in tokens where (try await daemon.client.event(clientToken: token)).state.isFinal { final += 1 }
                return final == tokens.count
            }
            let sent = daemon.standIn.acceptedEvents.filter { $0.bearer == "chat" }
            #expect(sent.count == 1)
            for token in tokens where token != sent.first?.clientToken {
                let record = try await daemon.client.event(clientToken: token)
                #expect(record.state == .superseded)
                #expect(record.supersededBy != nil)
            }
        }
    }
}
