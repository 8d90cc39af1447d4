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

@Suite struct FaultMixTests {
    @Test("Under a mix of 500s, 429s, dropped connections and slow answers every event is sent once, in order per connection")
    func faultMix() async throws {
        let random = Locked(SeededGenerator(state: 20_261_121))
        let faults = Locked([String: Int]())
        // Slow answers per ClientToken: each is accepted once the delay is over, after the daemon
        // gave up and sent the event again.
        let slowAnswers = Locked([String: Int]())
        try await TestDaemon.with(behavior: { request in
            let roll = random.withLock { Double.random(in: 0..<1, using: &$0) }
            let fault: (String, ParticipantServiceStandIn.Behavior)? = switch roll {
            case ..<0.10: ("500", .error(status: 500, code: "InternalServerException", message: "oops"))
            case ..<0.20: ("429", .error(status: 429, code: "ThrottlingException", message: "Rate exceeded"))
            case ..<0.25: ("drop", .dropConnection)
            case ..<0.28: ("slow", .delay(.seconds(4), then: .accept))  // past the 3 s request timeout
            default: nil
            }
            guard let fault else { return .accept }
            faults.withLock { $0[fault.0, default: 0] += 1 }
            if fault.0 == "slow", let token = request.clientToken {
                slowAnswers.withLock { $0[token, default: 0] += 1 }
            }
            return fault.1
        }, configure: { $0.requestTimeout = .seconds(3) }) { daemon in
            // (The request count below is exact only if no answer but an injected slow one takes
            // longer than the timeout: with 1 s, a loaded two-core machine sometimes made one.)
            let connections = 10
            let perConnection = 12
            // Interleaved: connection 0's first event, connection 1's first, ...
            for index in 0..<perConnection {
                for connection in 0..<connections {
                    let type: EventContentType = index % 2 == 0 ? .messageDelivered : .messageRead
                    _ = try await daemon.client.submit(EventSubmission(
                        contentType: type.rawValue, content: receipt("m-\(connection)-\(index)"),
                        clientToken: "e-\(connection)-\(index)", connectionToken: "conn-\(connection)"
                    ))
                }
            }
            let total = connections * perConnection
            try await eventually(timeout: .seconds(60), "all \(total) events final") {
                (try? await daemon.client.health().queue["sent"]) == total
            }

            // Every event sent, and accepted by the service under its own ClientToken once.
            let accepted = daemon.standIn.acceptedEvents
            #expect(accepted.count == total)
            // Once, plus at most once for each slow answer cut off (the event was then sent again;
            // the slow one is accepted when its delay ends, which may be after this point). One
            // event drawing two slow answers happens in about one run in ten.
            let slow = slowAnswers.value
            let miscounted = accepted.filter { !(1...(1 + slow[$0.clientToken, default: 0])).contains($0.acceptCount) }
            #expect(miscounted.isEmpty, "\(miscounted.map { ($0.clientToken, $0.acceptCount, slow[$0.clientToken, default: 0]) })")
            // Per connection, the service accepted events in submission order.
            for connection in 0..<connections {
                let order = accepted.filter { $0.bearer == "conn-\(connection)" }.map(\.clientToken)
                #expect(order == (0..<perConnection).map { "e-\(connection)-\($0)" })
            }
            // Requests: one per fault, plus one success per event. (A slow answer is a fault: the
            // daemon gave up on it and sent the event again, which the service deduplicated.)
            let faultCounts = faults.value
            let injected = faultCounts.values.reduce(0, +)
            #expect(daemon.standIn.requests.count == total + injected, "\(faultCounts)")
            #expect(injected > 10, "\(faultCounts)")
            #expect(daemon.standIn.invalidRequestCount == 0)
            for connection in 0..<connections {
                let record = try await daemon.client.event(clientToken: "e-\(connection)-0")
                #expect(record.state == .sent)
            }
        }
    }
}
