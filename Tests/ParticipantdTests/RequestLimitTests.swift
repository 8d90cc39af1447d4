import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import ParticipantTestSupport
import Testing

/// Every refusal of bad input is a JSON error with a stable code, and none hurts the daemon.
@Suite struct RequestLimitTests {
    static let typing = #"{"contentType": "application/vnd.amazonaws.connect.event.typing", "connectionToken": "c"}"#

    func expectHealthy(_ daemon: TestDaemon) async throws {
        #expect(try await daemon.client.health().status == "ok")
    }

    @Test("A known path with another method is 405 with Allow; an unknown path 404; both JSON with x-amzn-ErrorType")
    func methodsAndPaths() async throws {
        try await TestDaemon.with { daemon in
            let client = RawSocketClient(path: daemon.configuration.socketPath)
            let (status, headers, body) = try await client.requestWithHeaders(method: "DELETE", path: "/v1/health")
            #expect(status == 405)
            #expect(headers["allow"] == "GET")
            #expect(headers["x-amzn-errortype"] == "MethodNotAllowed")
            #expect(try JSONDecoder().decode(ErrorBody.self, from: body).code == "MethodNotAllowed")

            let (putEvents, eventHeaders, _) = try await client.requestWithHeaders(method: "PUT", path: "/v1/events")
            #expect(putEvents == 405)
            #expect(eventHeaders["allow"] == "POST, GET")
            #expect(try await client.request(method: "PUT", path: "/v1/events/some-token").0 == 405)
            #expect(try await client.request(method: "GET", path: "/participant/event").0 == 405)

            let (missing, _, missingBody) = try await client.requestWithHeaders(method: "GET", path: "/v2/nothing")
            #expect(missing == 404)
            #expect(try JSONDecoder().decode(ErrorBody.self, from: missingBody).code == "NotFound")
        }
    }

    @Test("A body declared as anything but JSON is 415; invalid UTF-8, deep nesting and non-objects are 400 MalformedRequest")
    func contentTypeAndMalformedBodies() async throws {
        try await TestDaemon.with { daemon in
            let client = RawSocketClient(path: daemon.configuration.socketPath)
            for contentType in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
                let (status, _, body) = try await client.requestWithHeaders(method: "POST", path: "/v1/events", body: Self.typing, contentType: contentType)
                #expect(status == 415, "\(contentType)")
                #expect(try JSONDecoder().decode(ErrorBody.self, from: body).code == "UnsupportedMediaType")
            }
            for contentType in ["application/json; charset=utf-8", "application/x-amz-json-1.1", "Application/JSON", nil] {
                let (status, _, _) = try await client.requestWithHeaders(method: "POST", path: "/v1/events", body: Self.typing, contentType: contentType)
                #expect(status == 202 || status == 200, "\(contentType ?? "none")")
            }

            let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            let nestedInField = #"{"contentType": "#, tail = "}"
            let badBodies = [
                "", "null", "[]", "\"typing\"", "{", deep,
                nestedInField + String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000) + tail,
            ]
            for bad in badBodies {
                let (status, _, body) = try await client.requestWithHeaders(method: "POST", path: "/v1/events", body: bad)
                #expect(status == 400, "\(bad.prefix(30))")
                #expect(try JSONDecoder().decode(ErrorBody.self, from: body).code == "MalformedRequest", "\(bad.prefix(30))")
            }

            // Invalid UTF-8 inside a string: bytes no JSON text may hold.
            let connection = try RawConnection(path: daemon.configuration.socketPath)
            let invalid: [UInt8] = Array(#"{"contentType": ""#.utf8) + [0xC3, 0x28, 0xFF] + Array(#"", "connectionToken": "c"}"#.utf8)
            await connection.send("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(invalid.count)\r\nConnection: close\r\n\r\n")
            await connection.send(invalid)
            let response = try #require(await connection.readResponse())
            #expect(response.status == 400)
            #expect(response.errorCode == "MalformedRequest")
            try await expectHealthy(daemon)
        }
    }

    @Test("Too many header bytes or header fields are 431 RequestHeaderFieldsTooLarge, as JSON")
    func headerLimits() async throws {
        try await TestDaemon.with(configure: { $0.api.maxHeaderBytes = 2_048; $0.api.maxHeaderCount = 16 }) { daemon in
            let big = try RawConnection(path: daemon.configuration.socketPath)
            await big.send("GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 4_000))\r\n\r\n")
            let bigResponse = try #require(await big.readResponse())
            #expect(bigResponse.status == 431)
            #expect(bigResponse.errorCode == "RequestHeaderFieldsTooLarge")
            #expect(bigResponse.headers["x-amzn-errortype"] == "RequestHeaderFieldsTooLarge")

            let many = try RawConnection(path: daemon.configuration.socketPath)
            let headers = (0..<40).map { "X-H\($0): v\r\n" }.joined()
            await many.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\(headers)\r\n")
            let manyResponse = try #require(await many.readResponse())
            #expect(manyResponse.status == 431)
            #expect(manyResponse.errorCode == "RequestHeaderFieldsTooLarge")

            // Within the limits, the same connection kind works.
            let fine = try RawConnection(path: daemon.configuration.socketPath)
            await fine.send("GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(await fine.readResponse()?.status == 200)
            try await expectHealthy(daemon)
        }
    }

    @Test("Bytes that are not HTTP get a JSON 400 MalformedRequest and the connection closes")
    func notHTTP() async throws {
        try await TestDaemon.with { daemon in
            for garbage in ["HELLO\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "POST /v1/events HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "\u{0}\u{1}\u{2}\r\n\r\n"] {
                let connection = try RawConnection(path: daemon.configuration.socketPath)
                await connection.send(garbage)
                let (data, closed) = await connection.readUntilClosed(timeout: .seconds(10))
                let response = try #require(RawResponse(data), "\(garbage.debugDescription)")
                #expect(response.status == 400, "\(garbage.debugDescription)")
                #expect(response.errorCode == "MalformedRequest", "\(garbage.debugDescription)")
                #expect(closed)
            }
            try await expectHealthy(daemon)
        }
    }

    @Test("A client that trickles its request is cut off with 408 after api.requestTimeoutSeconds; an idle one is closed")
    func slowAndIdleClients() async throws {
        // The idle timeout (Hummingbird's) runs from the connection's start and is not reset by a
        // partial request: well above the request timeout, so that a loaded machine that reads
        // the first bytes late still answers the trickled head with 408 (at 500 ms it closed
        // silently once, in CI).
        try await TestDaemon.with(configure: { $0.api.requestTimeout = .milliseconds(300); $0.api.idleTimeout = .seconds(3) }) { daemon in
            let clock = ContinuousClock()

            // Headers never finished.
            let slowHead = try RawConnection(path: daemon.configuration.socketPath)
            let start = clock.now
            await slowHead.send("POST /v1/events HTTP/1.1\r\nHost: x\r\n")
            let (headData, headClosed) = await slowHead.readUntilClosed(timeout: .seconds(10))
            #expect(headClosed)
            #expect(RawResponse(headData)?.status == 408)
            #expect(RawResponse(headData)?.errorCode == "RequestTimeout")
            #expect(clock.now - start < .seconds(5))

            // A body that stops halfway, trickled byte by byte.
            let slowBody = try RawConnection(path: daemon.configuration.socketPath)
            await slowBody.send("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
            for byte in Self.typing.utf8.prefix(5) {
                await slowBody.send([byte])
                try await Task.sleep(for: .milliseconds(50))
            }
            let (bodyData, bodyClosed) = await slowBody.readUntilClosed(timeout: .seconds(10))
            #expect(bodyClosed)
            #expect(RawResponse(bodyData)?.status == 408)

            // Connected, never sends anything: closed by the idle timeout, without an answer.
            let idle = try RawConnection(path: daemon.configuration.socketPath)
            let (idleData, idleClosed) = await idle.readUntilClosed(timeout: .seconds(10))
            #expect(idleClosed)
            #expect(idleData.isEmpty)

            // Nothing was stored by any of them, and a normal request still works: on a connection
            // of its own, since the test's client may hold a pooled keep-alive connection that the
            // idle timeout closes just as it is reused (a reset, seen once in a CI run).
            let fresh = try RawConnection(path: daemon.configuration.socketPath)
            await fresh.send("GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let response = try #require(await fresh.readResponse())
            #expect(response.status == 200)
            let health = try WireCoding.decoder().decode(HealthReport.self, from: response.body)
            #expect(health.status == "ok")
            #expect(health.queue.values.reduce(0, +) == 0)
        }
    }

    @Test("On a kept-alive connection each request has its own api.requestTimeoutSeconds: one begun after an earlier one's answer is cut off at its own deadline, not the earlier one's")
    func timeoutOfALaterRequest() async throws {
        try await TestDaemon.with(configure: { $0.api.requestTimeout = .milliseconds(400); $0.api.idleTimeout = .seconds(5) }) { daemon in
            let clock = ContinuousClock()
            let connection = try RawConnection(path: daemon.configuration.socketPath)
            await connection.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            let (answer, closedEarly) = await connection.readKeepAliveResponse()
            #expect(answer?.status == 200)
            #expect(!closedEarly)
            // Well inside the first request's time, which the connection's timer was armed for.
            try await Task.sleep(for: .milliseconds(200))
            let start = clock.now
            await connection.send("POST /v1/events HTTP/1.1\r\nHost: x\r\n")
            let (data, closed) = await connection.readUntilClosed(timeout: .seconds(10))
            #expect(closed)
            #expect(RawResponse(data)?.status == 408)
            // The daemon's timing starts when the bytes arrive, after `start`: never earlier.
            #expect(clock.now - start >= .milliseconds(400), "cut off at the first request's deadline")
        }
    }

    @Test("Beyond api.maxConnections a new connection is closed at once, before any request; once one closes, connections are taken again")
    func connectionLimit() async throws {
        try await TestDaemon.with(configure: { $0.api.maxConnections = 3; $0.api.peerMaxConnections = 3 }) { daemon in
            // Connections are opened one at a time, each answering a request and staying open, until
            // one is closed without an answer. The test's own client may keep one keep-alive
            // connection of the limit's three (from the readiness check), so two or three are taken.
            var open: [RawConnection] = []
            var refused = false
            for _ in 0..<5 {
                let connection = try RawConnection(path: daemon.configuration.socketPath)
                await connection.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                let (response, closed) = await connection.readKeepAliveResponse()
                if response == nil && closed {
                    refused = true
                    break
                }
                #expect(response?.status == 200)
                #expect(!closed)
                open.append(connection)
            }
            #expect(refused)
            #expect((2...3).contains(open.count))
            // One that sends nothing is closed as well: it holds no descriptor until an idle timer.
            let silent = try RawConnection(path: daemon.configuration.socketPath)
            let (bytes, closed) = await silent.readUntilClosed(timeout: .seconds(10))
            #expect(closed && bytes.isEmpty)
            #expect(daemon.logText.contains("Connection refused: api.maxConnections connections are open"))

            open.removeAll()  // closes them
            try await eventually(timeout: .seconds(10), "a connection is accepted again") {
                let again = try RawConnection(path: daemon.configuration.socketPath)
                await again.send("GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return await again.readResponse()?.status == 200
            }
        }
    }
}
