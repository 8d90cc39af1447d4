import Foundation
import GRDB
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantWire
import ParticipantTestSupport
import Testing

/// The daemon over its real Unix socket, delivering over real HTTP to the stand-in.
@Suite struct EndToEndTests {
    let connection = "conn-token-SECRET-\(UUID().uuidString)"

    @Test("Every content type reaches the service once, with the stored ClientToken", arguments: EventContentType.allCases)
    func everyContentTypeIsDelivered(type: EventContentType) async throws {
        try await TestDaemon.with { daemon in
            let content = type.sampleContent()
            let answer = try await daemon.client.submit(
                EventSubmission(contentType: type.rawValue, content: content, clientToken: "token-\(type.shortName)", connectionToken: connection)
            )
            // Given a new event, the daemon acknowledges it as stored and queued.
            #expect(answer.created)
            #expect(answer.event.clientToken == "token-\(type.shortName)")
            #expect(answer.warnings.isEmpty == !type.isDeprecated)

            let sent = try await daemon.waitForEvent(answer.event.clientToken) { $0.state == .sent }
            let accepted = try #require(daemon.standIn.acceptedEvents.first)
            #expect(daemon.standIn.acceptedEvents.count == 1)
            #expect(accepted.clientToken == "token-\(type.shortName)")
            #expect(accepted.contentType == type.rawValue)
            #expect(accepted.content == content)
            #expect(accepted.bearer == connection)
            #expect(sent.id == accepted.id)
            #expect(sent.absoluteTime == accepted.absoluteTime)
            #expect(sent.attempts == 1)
            #expect(daemon.standIn.invalidRequestCount == 0)
        }
    }

    @Test("A missing ClientToken is generated once, stored, returned and sent")
    func generatedClientToken() async throws {
        try await TestDaemon.with { daemon in
            let answer = try await daemon.client.submit(
                EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: connection)
            )
            let token = answer.event.clientToken
            #expect(UUID(uuidString: token) != nil)
            _ = try await daemon.waitForEvent(token) { $0.state == .sent }
            #expect(daemon.standIn.acceptedEvents.map(\.clientToken) == [token])
        }
    }

    @Test("The same ClientToken again answers 200 with the same record and sends nothing more")
    func duplicateSubmission() async throws {
        try await TestDaemon.with { daemon in
            let submission = EventSubmission(
                contentType: EventContentType.messageRead.rawValue, content: receipt("m-1"), clientToken: "dup-1", connectionToken: connection
            )
            let first = try await daemon.client.submit(submission)
            _ = try await daemon.waitForEvent("dup-1") { $0.state == .sent }
            let second = try await daemon.client.submit(submission)
            #expect(first.created)
            #expect(!second.created)
            #expect(second.event.clientToken == "dup-1")
            #expect(second.event.state == .sent)
            #expect(second.event.acceptedAt == first.event.acceptedAt)
            // Nothing waits and nothing is in flight: no further request can come.
            let stats = try await daemon.client.stats()
            #expect(stats.counts["queued"] == 0 && stats.counts["sending"] == 0 && stats.requestsInFlight == 0)
            #expect(daemon.standIn.requests.count == 1)
        }
    }

    @Test("Concurrent submissions of one ClientToken store one event")
    func concurrentDuplicates() async throws {
        try await TestDaemon.with { daemon in
            let submission = EventSubmission(
                contentType: EventContentType.messageDelivered.rawValue, content: receipt("m-2"), clientToken: "race-1", connectionToken: connection
            )
            let client = daemon.client
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await client.submit(submission).created }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(created == 1)
            _ = try await daemon.waitForEvent("race-1") { $0.state == .sent }
            #expect(daemon.standIn.acceptedEvents.count == 1)
        }
    }

    @Test("The same ClientToken with other parameters is refused with 409 and names what differs")
    func parameterMismatch() async throws {
        try await TestDaemon.with { daemon in
            _ = try await daemon.client.submit(
                EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "mm-1", connectionToken: connection)
            )
            let error = await #expect(throws: DaemonClientError.self) {
                try await daemon.client.submit(
                    EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "mm-1", connectionToken: "another-connection")
                )
            }
            guard case .api(let status, let body) = error else { Issue.record("expected an API error"); return }
            #expect(status == 409)
            #expect(body.code == "IdempotentParameterMismatch")
            #expect(body.message.contains("connectionToken"))
            #expect(!body.message.contains("another-connection"))
        }
    }

    @Test("Bad input is refused with 400 and a message naming the field and the rule")
    func badInput() async throws {
        try await TestDaemon.with { daemon in
            let cases: [(EventSubmission, String)] = [
                (EventSubmission(contentType: nil, connectionToken: connection), "contentType is required"),
                (EventSubmission(contentType: "text/plain", connectionToken: connection), "contentType must be one of"),
                (EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: nil), "connectionToken is required"),
                (EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: ""), "connectionToken must be at least 1"),
                (EventSubmission(contentType: EventContentType.messageRead.rawValue, content: "{}", connectionToken: connection), "content for a message receipt"),
                (EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: String(repeating: "x", count: 501), connectionToken: connection), "clientToken must be at most 500"),
            ]
            for (submission, expected) in cases {
                let error = await #expect(throws: DaemonClientError.self) { try await daemon.client.submit(submission) }
                guard case .api(let status, let body) = error else { Issue.record("expected an API error for \(expected)"); continue }
                #expect(status == 400)
                #expect(body.code == "ValidationException")
                #expect(body.message.contains(expected), "\(body.message)")
            }
            let health = try await daemon.client.health()
            #expect(health.queue.values.reduce(0, +) == 0)
        }
    }

    @Test("A body that is not a JSON object is 400 MalformedRequest; one too large is 413; a wrong field type is 400")
    func malformedBodies() async throws {
        try await TestDaemon.with(configure: { $0.api.maxBodyBytes = 2_048 }) { daemon in
            let cases: [(String, Int, String)] = [
                ("not json", 400, "MalformedRequest"),
                ("[1, 2]", 400, "MalformedRequest"),
                ("{\"contentType\": 7, \"connectionToken\": \"c\"}", 400, "ValidationException"),
                ("{\"content\": \"" + String(repeating: "a", count: 4_000) + "\"}", 413, "PayloadTooLarge"),
            ]
            for (body, status, code) in cases {
                let (answerStatus, answer) = try await RawSocketClient(path: daemon.configuration.socketPath)
                    .request(method: "POST", path: "/v1/events", body: body)
                #expect(answerStatus == status, "\(body.prefix(30))")
                let error = try JSONDecoder().decode(ErrorBody.self, from: answer)
                #expect(error.code == code)
            }
            let (status, answer) = try await RawSocketClient(path: daemon.configuration.socketPath).request(method: "GET", path: "/nowhere")
            #expect(status == 404)
            #expect(try JSONDecoder().decode(ErrorBody.self, from: answer).code == "NotFound")
        }
    }

    @Test("Content with U+0000 gets 400 naming the field, and nothing is stored: SQLite would have kept it cut short at the NUL")
    func contentWithNUL() async throws {
        try await TestDaemon.with { daemon in
            for (path, body) in [
                ("/v1/events", #"{"contentType":"application/vnd.amazonaws.connect.event.typing","content":"a\u0000b","clientToken":"nul-1","connectionToken":"c"}"#),
                ("/v1/messages", #"{"contentType":"text/plain","content":"a\u0000b","clientToken":"nul-2","connectionToken":"c"}"#),
            ] {
                let (status, answer) = try await RawSocketClient(path: daemon.configuration.socketPath).request(method: "POST", path: path, body: body)
                #expect(status == 400, "\(path): \(String(decoding: answer, as: UTF8.self))")
                let error = try JSONDecoder().decode(ErrorBody.self, from: answer)
                #expect(error.message.contains("content") && error.message.contains("U+0000"), "\(error)")
            }
            #expect(try await daemon.client.list(limit: 10).isEmpty)
        }
    }

    @Test("GET /v1/events/{token} finds tokens with any characters; an unknown token is 404 EventNotFound")
    func lookUp() async throws {
        try await TestDaemon.with { daemon in
            let token = "weird token/with?chars&é"
            _ = try await daemon.client.submit(
                EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: token, connectionToken: connection)
            )
            let record = try await daemon.client.event(clientToken: token)
            #expect(record.clientToken == token)
            let error = await #expect(throws: DaemonClientError.self) { try await daemon.client.event(clientToken: "unknown") }
            #expect(error == .api(status: 404, ErrorBody(code: "EventNotFound", message: "no event with clientToken unknown")))
        }
    }

    @Test("400, 403 and 409 from the service end the event as failed, with the service's code and message")
    func finalErrors() async throws {
        let cases = [(400, "ValidationException"), (403, "AccessDeniedException"), (409, "ConflictException")]
        for (status, code) in cases {
            try await TestDaemon.with(behavior: { _ in .error(status: status, code: code, message: "refused: \(code)") }) { daemon in
                let answer = try await daemon.client.submit(
                    EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("m"), connectionToken: connection)
                )
                let record = try await daemon.waitForEvent(answer.event.clientToken) { $0.state.isFinal }
                #expect(record.state == .failed)
                #expect(record.lastError == ErrorBody(code: code, message: "refused: \(code)"))
                #expect(record.attempts == 1)
                #expect(daemon.standIn.requests.count == 1)
            }
        }
    }

    @Test("429, 500, 503, dropped connections and slow answers are retried with the same ClientToken until sent")
    func transientErrors() async throws {
        let failures: [ParticipantServiceStandIn.Behavior] = [
            .error(status: 429, code: "ThrottlingException", message: "slow down"),
            .error(status: 500, code: "InternalServerException", message: "oops"),
            .error(status: 503, code: "ServiceUnavailable", message: "busy"),
            .dropConnection,
            .delay(.seconds(20), then: .accept),  // past the request timeout below
        ]
        for failure in failures {
            let calls = Counter()
            try await TestDaemon.with(
                behavior: { _ in calls.next() <= 2 ? failure : .accept },
                // Only the slow answers need a short timeout; 1 s was once too short for the
                // answer that succeeds, with two suites at once on two cores (4 attempts, not 3).
                configure: { if case .delay = failure { $0.requestTimeout = .seconds(3) } }
            ) { daemon in
                let answer = try await daemon.client.submit(
                    EventSubmission(contentType: EventContentType.messageDelivered.rawValue, content: receipt("m"), clientToken: "retry-me", connectionToken: connection)
                )
                let record = try await daemon.waitForEvent("retry-me") { $0.state.isFinal }
                #expect(record.state == .sent, "\(failure)")
                #expect(record.attempts == 3)
                #expect(record.lastError == nil)
                #expect(Set(daemon.standIn.requests.map(\.clientToken)) == ["retry-me"])
                #expect(daemon.logText.contains("Retry scheduled"))
                _ = answer
            }
        }
    }

    @Test("An event that cannot be delivered before its deadline ends expired and is not sent late")
    func expiry() async throws {
        try await TestDaemon.with(
            behavior: { _ in .error(status: 503, code: "ServiceUnavailable", message: "down") },
            configure: { $0.deadlines.typing = .seconds(1) }
        ) { daemon in
            let answer = try await daemon.client.submit(
                EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: connection)
            )
            let record = try await daemon.waitForEvent(answer.event.clientToken, timeout: .seconds(15)) { $0.state.isFinal }
            #expect(record.state == .expired)
            #expect(record.lastError?.code == "DeadlineExceeded")
            // Expired events are never leased and no attempt at it is in flight (it expires only
            // when queued, or once an attempt's answer came): nothing can be sent late.
            let stats = try await daemon.client.stats()
            #expect(stats.counts["queued"] == 0 && stats.counts["sending"] == 0 && stats.requestsInFlight == 0)
            // Every attempt was leased before the deadline: the last lease's own time, read from
            // the outbox (a request is started only after its lease, and `deliver()` checks the
            // deadline again just before it: EventSenderTests.deadlinePassedAfterTheLease).
            let queue = try DatabaseQueue(path: daemon.configuration.databasePath, configuration: {
                var configuration = Configuration()
                configuration.readonly = true
                return configuration
            }())
            let lastLease = try await queue.read { db in
                try Int64.fetchOne(db, sql: "SELECT leasedAt FROM event WHERE clientToken = ?", arguments: [answer.event.clientToken])
            }
            if let leasedAt = lastLease {
                #expect(leasedAt <= record.deadline.millisecondsSince1970, "last lease at \(leasedAt), deadline \(record.deadline.millisecondsSince1970)")
            } else {
                // On a loaded machine the deadline may pass before the first lease: then it
                // expired queued, and nothing was sent at all.
                #expect(daemon.standIn.requests.isEmpty)
            }
            // And none arrived long after it. The stand-in's clock reads when its handler ran:
            // on a loaded two-core machine (the suites in parallel) a request leased in time
            // once took over 1 s to get there, so the allowance is the travel time's, not a retry's.
            #expect(daemon.standIn.requests.allSatisfy { $0.receivedAt <= record.deadline.addingTimeInterval(5) })
        }
    }

    @Test("Events of one connection arrive in acceptance order; a stuck connection holds up no other")
    func perConnectionOrder() async throws {
        let slow = "slow-connection"
        // The slow connection's request is held at the service until the others are through.
        let gate = ParticipantServiceStandIn.Gate()
        defer { gate.open() }
        try await TestDaemon.with(behavior: { request in
            request.bearer == slow ? .wait(gate, then: .accept) : .accept
        }, configure: { $0.requestTimeout = .seconds(120) }) { daemon in
            let connections = ["conn-a", "conn-b", "conn-c"]
            _ = try await daemon.client.submit(
                EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("slow"), clientToken: "slow-1", connectionToken: slow)
            )
            for index in 0..<10 {
                for connection in connections {
                    _ = try await daemon.client.submit(
                        EventSubmission(contentType: EventContentType.messageRead.rawValue, content: receipt("\(connection)-\(index)"),
                                        clientToken: "\(connection)-\(index)", connectionToken: connection)
                    )
                }
            }
            try await eventually(timeout: .seconds(30)) {
                daemon.standIn.acceptedEvents.filter { $0.bearer != slow }.count == 30
            }
            // The others all went through while the slow connection's only event was still in flight.
            #expect(try await daemon.client.event(clientToken: "slow-1").state == .sending)
            for connection in connections {
                let order = daemon.standIn.requests.filter { $0.bearer == connection }.compactMap(\.clientToken)
                #expect(order == (0..<10).map { "\(connection)-\($0)" })
            }
            gate.open()
            _ = try await daemon.waitForEvent("slow-1") { $0.state == .sent }
        }
    }

    @Test("Health reports the queue by state")
    func health() async throws {
        try await TestDaemon.with { daemon in
            let answer = try await daemon.client.submit(
                EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: connection)
            )
            _ = try await daemon.waitForEvent(answer.event.clientToken) { $0.state == .sent }
            let health = try await daemon.client.health()
            #expect(health.status == "ok")
            #expect(health.ready)
            #expect(health.queue["sent"] == 1)
            #expect(Set(health.queue.keys) == Set(EventState.allCases.map(\.rawValue)))
        }
    }

    @Test("The connection token appears in no answer and no log line")
    func connectionTokenStaysSecret() async throws {
        try await TestDaemon.with(behavior: { request in
            request.content?.contains("fail") == true ? .error(status: 403, code: "AccessDeniedException", message: "expired") : .accept
        }) { daemon in
            var answers: [String] = []
            for content in [receipt("ok"), receipt("fail")] {
                let answer = try await daemon.client.submit(
                    EventSubmission(contentType: EventContentType.messageRead.rawValue, content: content, connectionToken: connection)
                )
                let record = try await daemon.waitForEvent(answer.event.clientToken) { $0.state.isFinal }
                answers.append(String(decoding: try WireCoding.encoder().encode(answer), as: UTF8.self))
                answers.append(String(decoding: try WireCoding.encoder().encode(record), as: UTF8.self))
            }
            // The 403 blocked `connection`: a later submission is refused, naming no token.
            let refused = await #expect(throws: DaemonClientError.self) {
                try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, connectionToken: connection))
            }
            answers.append(String(describing: refused))
            _ = try await daemon.client.submit(
                EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "secret-1", connectionToken: connection + "-2")
            )
            let mismatch = await #expect(throws: DaemonClientError.self) {
                try await daemon.client.submit(
                    EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "secret-1", connectionToken: connection + "-other")
                )
            }
            answers.append(String(describing: mismatch))
            #expect(!answers.joined().contains("SECRET"))
            #expect(!daemon.logText.contains("SECRET"))
            #expect(daemon.logText.contains("Event accepted"))
            #expect(daemon.logText.contains("Event sent"))
            #expect(daemon.logText.contains("Event failed"))
        }
    }
}


@Suite struct StartupTests {
    @Test("A second daemon on a socket that is in use refuses to start and leaves the first one serving")
    func socketInUse() async throws {
        try await TestDaemon.with { daemon in
            let other = try TemporaryDirectory()
            defer { other.remove() }
            var configuration = daemon.configuration
            configuration.databasePath = other.path + "/outbox.sqlite"
            let error = await #expect(throws: ConfigurationError.self) {
                try await Daemon.run(configuration: configuration, shutdownSignals: [], logger: Logger(label: "second"))
            }
            #expect(error?.key == "socket")
            #expect(try await daemon.client.health().ready)
        }
    }
}

import Logging
