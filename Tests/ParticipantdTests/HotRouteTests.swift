import Foundation
@testable import ParticipantAPI
@testable import ParticipantDaemon
import ParticipantTestSupport
import ParticipantWire
import Testing

/// `POST /v1/events`, `/v1/messages` and `/v1/disconnect` are answered in the channel pipeline
/// (``HotRouteHandler``), every other request by Hummingbird's router, on the same connection:
/// answers in the order of the requests, the same answers whichever path gives them.
@Suite struct HotRouteTests {
    static func typing(_ clientToken: String, connection: String = "hot-connection") -> String {
        #"{"contentType": "application/vnd.amazonaws.connect.event.typing", "connectionToken": "\#(connection)", "clientToken": "\#(clientToken)"}"#
    }

    /// A request as bytes; `chunked` sends the body in chunked encoding, which the hot path
    /// leaves to the router.
    static func request(_ method: String, _ path: String, body: String? = nil, chunked: Bool = false, headers: [String] = []) -> String {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        for header in headers { text += header + "\r\n" }
        guard let body else { return text + "\r\n" }
        text += "Content-Type: application/json\r\n"
        let bytes = Array(body.utf8)
        if chunked {
            return text + "Transfer-Encoding: chunked\r\n\r\n" + String(bytes.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n"
        }
        return text + "Content-Length: \(bytes.count)\r\n\r\n" + body
    }

    @Test("Pipelined requests are answered in their order, whichever path answers each: a read after a submission finds it")
    func pipelinedOrder() async throws {
        try await TestDaemon.with { daemon in
            let connection = try RawConnection(path: daemon.configuration.socketPath)
            // Hot, router, router, hot, hot, router: each must see what the ones before it did,
            // and its answer must come after theirs.
            await connection.send(
                Self.request("POST", "/v1/events", body: Self.typing("hot-order-1"))
                    + Self.request("GET", "/v1/events/hot-order-1")
                    + Self.request("GET", "/v1/events/hot-order-2")
                    + Self.request("POST", "/v1/events", body: Self.typing("hot-order-2"))
                    + Self.request("POST", "/v1/events", body: Self.typing("hot-order-2"))
                    + Self.request("GET", "/v1/events/hot-order-2")
            )
            let (data, _) = await connection.read(timeout: .seconds(20)) { RawResponse.all($0).count >= 6 }
            let responses = RawResponse.all(data)
            #expect(responses.map(\.status) == [202, 200, 404, 202, 200, 200], "\(String(decoding: data, as: UTF8.self))")
            guard responses.count == 6 else { return }
            #expect(try WireCoding.decoder().decode(EventRecord.self, from: responses[1].body).clientToken == "hot-order-1")
            let duplicate = try WireCoding.decoder().decode(SubmitResponse.self, from: responses[4].body)
            #expect(duplicate.created == false && duplicate.event.clientToken == "hot-order-2")
            #expect(try WireCoding.decoder().decode(EventRecord.self, from: responses[5].body).clientToken == "hot-order-2")

            // A second connection: its first request the router's, the next ones hot.
            let second = try RawConnection(path: daemon.configuration.socketPath)
            await second.send(
                Self.request("GET", "/v1/events/hot-order-3")
                    + Self.request("POST", "/v1/events", body: Self.typing("hot-order-3"))
                    + Self.request("POST", "/v1/events", body: Self.typing("hot-order-4"))
                    + Self.request("GET", "/v1/events/hot-order-4")
            )
            let (secondData, _) = await second.read(timeout: .seconds(20)) { RawResponse.all($0).count >= 4 }
            #expect(RawResponse.all(secondData).map(\.status) == [404, 202, 202, 200], "\(String(decoding: secondData, as: UTF8.self))")
        }
    }

    @Test("A submission followed by the end of the client's input is answered, then the connection closes")
    func halfClose() async throws {
        try await TestDaemon.with { daemon in
            let connection = try RawConnection(path: daemon.configuration.socketPath)
            await connection.send(
                Self.request("POST", "/v1/events", body: Self.typing("hot-half-1"))
                    + Self.request("POST", "/v1/events", body: Self.typing("hot-half-2"))
            )
            connection.shutdownWrite()
            let (data, closed) = await connection.readUntilClosed(timeout: .seconds(20))
            #expect(RawResponse.all(data).map(\.status) == [202, 202], "\(String(decoding: data, as: UTF8.self))")
            #expect(closed)
            #expect(try await daemon.client.event(clientToken: "hot-half-2").clientToken == "hot-half-2")
        }
    }

    @Test("The hot path and the router give the same answers: status, error body, x-amzn-ErrorType, Retry-After, headers")
    func sameAnswers() async throws {
        try await TestDaemon.with { daemon in
            let stored = Self.typing("hot-same-1")
            _ = try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "hot-same-1", connectionToken: "hot-connection"))
            let cases: [(String, String)] = [
                ("/v1/events", stored),  // the same ClientToken again: 200
                ("/v1/events", Self.typing("hot-same-1", connection: "another")),  // mismatch: 409
                ("/v1/events", #"{"contentType": "text/plain", "connectionToken": "c"}"#),  // validation: 400
                ("/v1/events", #"{"contentType": "application/vnd.amazonaws.connect.event.typing", "connectionToken": "c", "instance": "nowhere"}"#),
                ("/v1/events", "[1, 2"),  // malformed
                ("/v1/messages", #"{"contentType": "text/plain", "content": "", "connectionToken": "c"}"#),
                ("/v1/disconnect", #"{"connectionToken": 5}"#),
            ]
            for (path, body) in cases {
                var answers: [RawResponse] = []
                for chunked in [false, true] {
                    let connection = try RawConnection(path: daemon.configuration.socketPath)
                    await connection.send(Self.request("POST", path, body: body, chunked: chunked))
                    let (data, _) = await connection.read(timeout: .seconds(20)) { RawResponse.all($0).count >= 1 }
                    answers.append(try #require(RawResponse.all(data).first, "\(path) \(body) chunked: \(chunked)"))
                }
                let (hot, router) = (answers[0], answers[1])
                #expect(hot.status == router.status, "\(path) \(body)")
                #expect(hot.headers["x-amzn-errortype"] == router.headers["x-amzn-errortype"], "\(path) \(body)")
                #expect(hot.headers["content-type"] == router.headers["content-type"], "\(path) \(body)")
                #expect(hot.headers["server"] == "participantd" && router.headers["server"] == "participantd", "\(path) \(body)")
                #expect(hot.headers["date"].map { $0.hasSuffix(" GMT") && $0.count == 29 } == true, "\(hot.headers)")
                #expect(hot.headers.keys.sorted() == router.headers.keys.sorted(), "\(path) \(body)")
                if hot.status == 200 {
                    // The record's state may move between the two (the stand-in takes the event).
                    let (hotAnswer, routerAnswer) = (try WireCoding.decoder().decode(SubmitResponse.self, from: hot.body), try WireCoding.decoder().decode(SubmitResponse.self, from: router.body))
                    #expect(!hotAnswer.created && !routerAnswer.created)
                    #expect(hotAnswer.event.clientToken == "hot-same-1" && routerAnswer.event.clientToken == "hot-same-1")
                } else {
                    #expect(hot.body == router.body, "\(String(decoding: hot.body, as: UTF8.self)) against \(String(decoding: router.body, as: UTF8.self))")
                }
            }
        }
    }

    @Test("Connection: close is answered by the router and closes; a body over api.maxBodyBytes is 413 on either path")
    func leftToTheRouter() async throws {
        try await TestDaemon.with { daemon in
            let connection = try RawConnection(path: daemon.configuration.socketPath)
            await connection.send(Self.request("POST", "/v1/events", body: Self.typing("hot-close-1"), headers: ["Connection: close"]))
            let (data, closed) = await connection.readUntilClosed(timeout: .seconds(20))
            #expect(RawResponse.all(data).map(\.status) == [202])
            #expect(closed)

            let large = String(repeating: " ", count: daemon.configuration.api.maxBodyBytes + 1)
            let tooLarge = try RawConnection(path: daemon.configuration.socketPath)
            await tooLarge.send(Self.request("POST", "/v1/events", body: large))
            let (answer, _) = await tooLarge.read(timeout: .seconds(20)) { RawResponse($0) != nil }
            #expect(RawResponse(answer)?.status == 413)
            #expect(RawResponse(answer)?.errorCode == "PayloadTooLarge")
        }
    }

    @Test("A taken request cut off before its end (408, or the client gone) gives its bytes of the body budget back")
    func budgetGivenBack() async throws {
        try await TestDaemon.with(configure: { $0.api.maxBodyMemoryMegabytes = 1; $0.api.requestTimeout = .milliseconds(300) }) { daemon in
            let socket = daemon.configuration.socketPath
            // Four requests of api.maxBodyBytes (256 KiB) hold the whole 1 MiB budget.
            let head = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(daemon.configuration.api.maxBodyBytes)\r\n\r\n{"
            var cutOff: [RawConnection] = []
            for _ in 0..<4 {
                let connection = try RawConnection(path: socket)
                await connection.send(head)
                cutOff.append(connection)
            }
            for connection in cutOff {
                let (data, closed) = await connection.readUntilClosed(timeout: .seconds(10))
                #expect(closed && RawResponse(data)?.status == 408)
            }
            var gone: [RawConnection] = []
            for _ in 0..<4 {
                let connection = try RawConnection(path: socket)
                await connection.send(head)
                gone.append(connection)
            }
            gone.removeAll()  // closed by the client before the request's end

            // Had any of them kept its bytes, this request would wait for room until the end.
            let after = try RawConnection(path: socket)
            await after.send(Self.request("POST", "/v1/events", body: Self.typing("hot-budget-1")))
            let (data, _) = await after.read(timeout: .seconds(10)) { RawResponse.all($0).count >= 1 }
            #expect(RawResponse.all(data).map(\.status) == [202])
        }
    }
}
