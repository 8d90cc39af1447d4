import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import ParticipantTestSupport
import Testing

/// A daemon on a shared host must survive whatever local programs write to its socket.
@Suite struct BarrageTests {
    static func request(_ method: String, _ path: String, headers: [String] = [], body: [UInt8] = []) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: participantd\r\n"
        for header in headers { head += header + "\r\n" }
        if !body.isEmpty { head += "Content-Length: \(body.count)\r\n" }
        return Array((head + "\r\n").utf8) + body
    }

    /// One malformed, truncated or hostile request: never a complete valid one.
    static func malformed(_ index: Int, random: inout SeededGenerator) -> [UInt8] {
        let valid = Array(#"{"contentType": "application/vnd.amazonaws.connect.event.typing", "connectionToken": "barrage"}"#.utf8)
        let validRequest = request("POST", "/v1/events", headers: ["Content-Type: application/json"], body: valid)
        switch index % 14 {
        case 0:  // a valid request cut short anywhere before its end
            return Array(validRequest.prefix(Int.random(in: 1..<validRequest.count, using: &random)))
        case 1:  // random bytes
            return (0..<Int.random(in: 1...2_000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 2:  // body is not JSON
            return request("POST", "/v1/events", headers: ["Content-Type: application/json"], body: Array("{\"contentType\": ".utf8))
        case 3:  // invalid UTF-8 in a string
            return request("POST", "/v1/events", headers: ["Content-Type: application/json"], body: Array(#"{"contentType": ""#.utf8) + [0xFF, 0xFE, 0xC0] + Array(#"", "connectionToken": "x"}"#.utf8))
        case 4:  // nested a hundred thousand deep
            return request("POST", "/participant/event", headers: ["X-Amz-Bearer: x"], body: Array((String(repeating: "[", count: 100_000)).utf8))
        case 5:  // a body larger than api.maxBodyBytes
            return request("POST", "/v1/events", headers: ["Content-Type: application/json"], body: [UInt8](repeating: UInt8(ascii: "a"), count: 300_000))
        case 6:  // a header block larger than api.maxHeaderBytes
            return request("GET", "/v1/health", headers: ["X-Pad: " + String(repeating: "p", count: 40_000)])
        case 7:  // too many header fields
            return request("GET", "/v1/health", headers: (0..<200).map { "X-\($0): \($0)" })
        case 8:  // Content-Length promises more than comes
            return Array("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"contentType\"".utf8)
        case 9:  // broken chunked encoding
            return Array("POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nZZZ\r\nabc\r\n".utf8)
        case 10:  // valid JSON, wrong types and rules
            let bodies = [#"{"contentType": 5, "connectionToken": []}"#, #"{"contentType": "text/plain", "connectionToken": "x"}"#, #"[1, 2, 3]"#, #"{"contentType": "application/vnd.amazonaws.connect.event.typing", "connectionToken": "a\u0000b"}"#]
            return request("POST", "/v1/events", headers: ["Content-Type: application/json"], body: Array(bodies[index % bodies.count].utf8))
        case 11:  // wrong content type, wrong method, unknown path
            return [request("POST", "/v1/events", headers: ["Content-Type: text/plain"], body: valid), request("PATCH", "/v1/events/x"), request("GET", "/../../etc/passwd")][index % 3]
        case 12:  // request smuggling shapes
            return Array("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 90\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".utf8)
        default:  // SendEvent without a bearer, or with a control character in it
            return request("POST", "/participant/event", headers: index % 2 == 0 ? [] : ["X-Amz-Bearer: a\u{7F}b"], body: Array(#"{"ContentType": "application/vnd.amazonaws.connect.event.typing"}"#.utf8))
        }
    }

    @Test("A barrage of malformed and truncated requests while valid events flow: the daemon lives, every valid event is stored and sent, the service sees no invalid request")
    func barrage() async throws {
        try await TestDaemon.with(configure: {
            $0.api.requestTimeout = .milliseconds(500)
            $0.logLevel = .warning
            $0.coalescing.typingInterval = .zero  // every valid event is sent
            $0.coalescing.receipts = false
        }) { daemon in
            let socket = daemon.configuration.socketPath
            let valid = Locked<[String]>([])

            async let flow: Void = withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<8 {
                    group.addTask {
                        for index in 0..<25 {
                            let token = "valid-\(client)-\(index)"
                            let type = EventContentType.allCases[index % EventContentType.allCases.count]
                            let answer = try await daemon.client.submit(EventSubmission(
                                contentType: type.rawValue, content: type.sampleContent("m-\(client)-\(index)"),
                                clientToken: token, connectionToken: "flow-\(client)"
                            ))
                            if answer.created { valid.withLock { $0.append(token) } }
                        }
                    }
                }
                try await group.waitForAll()
            }

            let attacks = 420
            let refusals = Locked<[Int: Int]>([:])
            async let barrage: Void = withTaskGroup(of: Void.self) { group in
                var random = SeededGenerator(state: 20_261_121)
                let payloads = (0..<attacks).map { Self.malformed($0, random: &random) }
                for worker in 0..<6 {
                    group.addTask {
                        for index in stride(from: worker, to: payloads.count, by: 6) {
                            guard let connection = try? RawConnection(path: socket) else { continue }
                            await connection.send(payloads[index])
                            // Until a whole answer arrives or the daemon closes (a bound, not a wait:
                            // under a loaded suite an answer took longer than a fixed 300 ms).
                            let (answer, _) = await connection.readKeepAliveResponse(timeout: .seconds(5))
                            if let response = answer, response.errorCode != nil {
                                refusals.withLock { $0[response.status, default: 0] += 1 }
                            }
                        }
                    }
                }
            }
            try await flow
            await barrage

            // Most attacks got a JSON refusal (the rest were cut off or closed): 400, 404, 405, 408, 413, 415, 431.
            let refused = refusals.withLock { $0 }
            #expect(refused.values.reduce(0, +) > attacks / 2, "\(refused)")
            #expect(refused.keys.allSatisfy { (400..<500).contains($0) }, "\(refused)")

            // Alive and healthy.
            let health = try await daemon.client.health()
            #expect(health.status == "ok", "\(health.problems)")
            let acknowledged = valid.withLock { $0 }
            #expect(acknowledged.count == 200)
            // Nothing but the valid events was stored.
            #expect(health.queue.values.reduce(0, +) == acknowledged.count)
            try await eventually(timeout: .seconds(60), "every valid event sent") {
                Set(daemon.standIn.acceptedEvents.map(\.clientToken)).isSuperset(of: acknowledged)
            }
            #expect(daemon.standIn.invalidRequestCount == 0)
            #expect(daemon.standIn.acceptedEvents.count == acknowledged.count)
        }
    }
}
