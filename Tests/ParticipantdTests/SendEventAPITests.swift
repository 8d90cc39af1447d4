import AsyncHTTPClient
import Configuration
import Foundation
import NIOCore
import NIOFoundationCompat
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantWire
import ParticipantTestSupport
import Testing

/// `POST /participant/event`: SendEvent as the service answers it, for AWS SDKs.
@Suite struct SendEventAPITests {
    static let typing = EventContentType.typing.rawValue
    static let refusedBearer = "refused-by-the-service"

    /// The stand-in refuses one connection token as the service refuses an ended chat.
    static let behavior: @Sendable (ParticipantServiceStandIn.ReceivedRequest) -> ParticipantServiceStandIn.Behavior = { request in
        request.bearer == refusedBearer
            ? .error(status: 403, code: "AccessDeniedException", message: "You do not have sufficient access to perform this action.")
            : .accept
    }

    func sendEvent(_ daemon: TestDaemon, body: String, bearer: String?, extraHeaders: [(String, String)] = []) async throws -> (Int, [String: String], [String: Any]) {
        var headers = extraHeaders
        if let bearer { headers.append(("X-Amz-Bearer", bearer)) }
        // Longer than the route may wait for delivery (aws.waitForDeliverySeconds), which the
        // tests of the service's answer set to TestDaemon.patientDeliveryWait.
        let client = RawSocketClient(path: daemon.configuration.socketPath, timeout: TestDaemon.patientDeliveryWait + .seconds(15))
        let (status, answerHeaders, data) = try await client
            .requestWithHeaders(method: "POST", path: "/participant/event", body: body, headers: headers)
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        return (status, answerHeaders, json)
    }

    @Test("The service's request gets the service's answer: the Id and AbsoluteTime the service gave, the same again for a duplicate")
    func answersWithTheServiceOutput() async throws {
        try await TestDaemon.with(behavior: Self.behavior, configure: { $0.api.deliveryWait = TestDaemon.patientDeliveryWait }) { daemon in
            let body = #"{"ContentType": "\#(Self.typing)", "ClientToken": "sdk-token-1"}"#
            // An SDK that signs sends Authorization: it is ignored.
            let (status, headers, answer) = try await sendEvent(daemon, body: body, bearer: "conn-1", extraHeaders: [("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261121/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=0")])
            #expect(status == 200)
            #expect(headers["x-participantd-event-state"] == "sent")
            let accepted = try #require(daemon.standIn.acceptedEvents.first)
            #expect(answer["Id"] as? String == accepted.id)
            #expect(answer["AbsoluteTime"] as? String == accepted.absoluteTime)
            #expect(accepted.clientToken == "sdk-token-1")
            #expect(accepted.bearer == "conn-1")

            let (again, _, againAnswer) = try await sendEvent(daemon, body: body, bearer: "conn-1")
            #expect(again == 200)
            #expect(againAnswer["Id"] as? String == accepted.id)
            #expect(daemon.standIn.acceptedEvents.count == 1)

            // The same event is visible through the daemon's own API.
            #expect(try await daemon.client.event(clientToken: "sdk-token-1").id == accepted.id)
        }
    }

    @Test("Bad input is ValidationException naming the service's field; the service's refusal is its own error")
    func errorsInTheServiceTerms() async throws {
        // The refusal is answered once it arrives, however long a loaded machine takes.
        try await TestDaemon.with(behavior: Self.behavior, configure: { $0.api.deliveryWait = TestDaemon.patientDeliveryWait }) { daemon in
            let cases: [(String, String?, Int, String)] = [
                (#"{"ContentType": "text/plain"}"#, "c", 400, "ContentType"),
                (#"{"ContentType": "\#(Self.typing)"}"#, nil, 400, "ConnectionToken"),
                (#"{"ContentType": "\#(EventContentType.messageRead.rawValue)", "Content": "not json"}"#, "c", 400, "Content"),
                (#"{"ContentType": 5}"#, "c", 400, "ContentType"),
                (#"not json"#, "c", 400, "JSON"),
            ]
            for (body, bearer, expectedStatus, mentioned) in cases {
                let (status, headers, answer) = try await sendEvent(daemon, body: body, bearer: bearer)
                #expect(status == expectedStatus, "\(body)")
                #expect(headers["x-amzn-errortype"] == "ValidationException", "\(body)")
                #expect((answer["message"] as? String)?.contains(mentioned) == true, "\(body): \(answer)")
            }

            // The same ClientToken with other parameters: never a second event.
            _ = try await sendEvent(daemon, body: #"{"ContentType": "\#(Self.typing)", "ClientToken": "reused"}"#, bearer: "c")
            let (mismatch, mismatchHeaders, _) = try await sendEvent(
                daemon, body: #"{"ContentType": "\#(EventContentType.connectionAcknowledged.rawValue)", "ClientToken": "reused"}"#, bearer: "c")
            #expect(mismatch == 400)
            #expect(mismatchHeaders["x-amzn-errortype"] == "ValidationException")

            let (refused, refusedHeaders, refusedAnswer) = try await sendEvent(daemon, body: #"{"ContentType": "\#(Self.typing)"}"#, bearer: Self.refusedBearer)
            #expect(refused == 403)
            #expect(refusedHeaders["x-amzn-errortype"] == "AccessDeniedException")
            #expect(refusedAnswer["message"] as? String == "You do not have sufficient access to perform this action.")
            // And afterwards the daemon refuses the connection itself, in the same terms.
            let (blocked, blockedHeaders, _) = try await sendEvent(daemon, body: #"{"ContentType": "\#(Self.typing)"}"#, bearer: Self.refusedBearer)
            #expect(blocked == 403)
            #expect(blockedHeaders["x-amzn-errortype"] == "AccessDeniedException")
            #expect(daemon.standIn.invalidRequestCount == 0)
        }
    }

    @Test("When delivery takes longer than aws.waitForDeliverySeconds the answer is the outbox's: queued:<ClientToken>")
    func answersBeforeDelivery() async throws {
        try await TestDaemon.with(behavior: { _ in .delay(.milliseconds(800), then: .accept) }, configure: { $0.api.deliveryWait = .milliseconds(100) }) { daemon in
            let (status, headers, answer) = try await sendEvent(daemon, body: #"{"ContentType": "\#(Self.typing)", "ClientToken": "slow-1"}"#, bearer: "c")
            // Answered before the service's answer (which takes 800 ms): the state says so.
            #expect(status == 200)
            let state = try #require(headers["x-participantd-event-state"])
            #expect(["queued", "sending"].contains(state))
            #expect(answer["Id"] as? String == "\(state):slow-1")
            #expect((answer["AbsoluteTime"] as? String).flatMap(WireCoding.parseTimestamp) != nil)
            // Delivered all the same.
            let record = try await daemon.waitForEvent("slow-1") { $0.state == .sent }
            #expect(record.id == daemon.standIn.acceptedEvents.first?.id)
        }
    }

    @Test("Many concurrent SendEvent requests each get their own event's answer from the service")
    func concurrentWaits() async throws {
        try await TestDaemon.with(behavior: { _ in .delay(.milliseconds(20), then: .accept) }, configure: { $0.api.deliveryWait = TestDaemon.patientDeliveryWait }) { daemon in
            let answers = try await withThrowingTaskGroup(of: (String, String?).self) { group in
                for index in 0..<40 {
                    group.addTask {
                        let (_, _, answer) = try await sendEvent(
                            daemon, body: #"{"ContentType": "\#(Self.typing)", "ClientToken": "many-\#(index)"}"#, bearer: "conn-\(index)")
                        return ("many-\(index)", answer["Id"] as? String)
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            let ids = Dictionary(uniqueKeysWithValues: daemon.standIn.acceptedEvents.map { ($0.clientToken, $0.id) })
            #expect(answers.count == 40)
            for (token, id) in answers {
                #expect(id == ids[token], "\(token)")
            }
        }
    }

    @Test("aws.listen answers SendEvent on loopback TCP, and only SendEvent")
    func tcpListener() async throws {
        try await withTCPListener { daemon, endpoint in
            var request = HTTPClientRequest(url: endpoint + "/participant/event")
            request.method = .POST
            request.headers.add(name: "X-Amz-Bearer", value: "tcp-conn")
            request.headers.add(name: "Content-Type", value: "application/x-amz-json-1.1")
            request.body = .bytes(ByteBuffer(string: #"{"ContentType": "\#(Self.typing)", "ClientToken": "tcp-1"}"#))
            // A bound, not a wait: once, under the whole suite, the answer took longer than 10 s.
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status.code == 200)
            #expect(daemon.standIn.acceptedEvents.map(\.clientToken) == ["tcp-1"])

            // The daemon's own routes stay behind the socket's permissions.
            let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: endpoint + "/v1/health"), timeout: .seconds(10))
            #expect(health.status.code == 404)
        }
    }

    @Test("boto3 with endpoint_url and UNSIGNED: every content type, a duplicate, ValidationException, AccessDeniedException")
    func boto3() async throws {
        try await withTCPListener { daemon, endpoint in
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("SDK/boto3_send_event.py").path
            let (status, output, errors) = try await ChildProcess.run("/usr/bin/env", ["python3", script, endpoint], environment: Self.awsEnvironment)
            #expect(status == 0, "\(output)\(errors)")
            let seen = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)\(errors)")
            #expect(seen["ok"] as? Bool == true)
            // Each content type reached the service once, under the ClientToken boto3 made up.
            let accepted = daemon.standIn.acceptedEvents
            #expect(Set(accepted.map(\.contentType)) == Set(EventContentType.allCases.map(\.rawValue)))
            #expect(accepted.count == EventContentType.allCases.count + 1)  // plus the duplicate, once
            #expect(daemon.standIn.invalidRequestCount == 0)
        }
    }

    @Test("aws connectparticipant send-event --endpoint-url: unsigned, signed (ignored), and a validation error")
    func awsCLI() async throws {
        try await withTCPListener { daemon, endpoint in
            let common = ["aws", "connectparticipant", "send-event", "--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json"]
            let (status, output, errors) = try await ChildProcess.run("/usr/bin/env", common + [
                "--no-sign-request", "--connection-token", "cli-conn", "--content-type", Self.typing, "--client-token", "cli-1",
            ], environment: Self.awsEnvironment)
            #expect(status == 0, "\(errors)")
            let answer = try JSONDecoder().decode(SendEventOutput.self, from: Data(output.utf8))
            #expect(answer.id == daemon.standIn.acceptedEvents.first { $0.clientToken == "cli-1" }?.id)

            // With credentials the CLI signs; the daemon ignores the signature.
            var signing = Self.awsEnvironment
            signing["AWS_ACCESS_KEY_ID"] = "AKIDEXAMPLE"
            signing["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
            let (signedStatus, _, signedErrors) = try await ChildProcess.run("/usr/bin/env", common + [
                "--connection-token", "cli-conn", "--content-type", EventContentType.messageRead.rawValue,
                "--content", receipt("cli-message"), "--client-token", "cli-2",
            ], environment: signing)
            #expect(signedStatus == 0, "\(signedErrors)")

            let (invalidStatus, _, invalidErrors) = try await ChildProcess.run("/usr/bin/env", common + [
                "--no-sign-request", "--connection-token", "cli-conn", "--content-type", "text/plain",
            ], environment: Self.awsEnvironment)
            #expect(invalidStatus == 254 || invalidStatus == 255)  // AWS CLI v2 says 254 for a service error, v1 255
            #expect(invalidErrors.contains("ValidationException"), "\(invalidErrors)")
            #expect(Set(daemon.standIn.acceptedEvents.map(\.clientToken)) == ["cli-1", "cli-2"])
        }
    }

    @Test("The daemon's refusals map to the service's error codes")
    func serviceErrorMapping() {
        let cases: [(APIError, Int, String)] = [
            (APIError(.badRequest, code: APIErrorCode.malformedRequest, message: "m"), 400, "ValidationException"),
            (APIError(.conflict, code: APIErrorCode.idempotentParameterMismatch, message: "m"), 400, "ValidationException"),
            (APIError(.contentTooLarge, code: APIErrorCode.payloadTooLarge, message: "m"), 413, "ValidationException"),
            (APIError(.unsupportedMediaType, code: APIErrorCode.unsupportedMediaType, message: "m"), 415, "ValidationException"),
            (APIError(.gone, code: APIErrorCode.connectionRejected, message: "m"), 403, "AccessDeniedException"),
            (APIError(.conflict, code: APIErrorCode.receiptsRefused, message: "m"), 409, "ConflictException"),
            (APIError(.serviceUnavailable, code: APIErrorCode.outboxFull, message: "m"), 429, "ThrottlingException"),
            (APIError(.init(code: 507), code: APIErrorCode.storageFull, message: "m"), 500, "InternalServerException"),
            (APIError(.serviceUnavailable, code: APIErrorCode.unavailable, message: "m"), 503, "ServiceUnavailableException"),
        ]
        for (error, status, code) in cases {
            let mapped = error.asServiceError
            #expect(Int(mapped.status.code) == status, "\(error.body.code)")
            #expect(mapped.body.code == code, "\(error.body.code)")
            #expect(mapped.body.message == "m")
        }
    }

    @Test("aws.listen: HOST:PORT, loopback only unless aws.allowNonLoopback")
    func listenConfiguration() async throws {
        func load(_ values: [String: String]) async throws -> DaemonConfiguration {
            try await ConfigurationSources.load(flags: values, environment: [:], configFile: nil)
        }
        #expect(try await load(["aws.listen": "127.0.0.1:8790"]).awsListen == ListenAddress(host: "127.0.0.1", port: 8790))
        #expect(try await load(["aws.listen": "[::1]:8790"]).awsListen == ListenAddress(host: "::1", port: 8790))
        #expect(try await load(["aws.listen": "localhost:0"]).awsListen?.port == 0)
        #expect(try await load([:]).awsListen == nil)
        for bad in ["0.0.0.0:8790", "8790", "127.0.0.1:70000", "::1:8790", "10.0.0.5:8790"] {
            await #expect(throws: ConfigurationError.self, "\(bad)") { try await load(["aws.listen": bad]) }
        }
        #expect(try await load(["aws.listen": "0.0.0.0:8790", "aws.allowNonLoopback": "true"]).awsListen?.host == "0.0.0.0")
        do {
            _ = try await load(["aws.listen": "10.0.0.5:8790"])
        } catch let error as ConfigurationError {
            #expect(error.key == "aws.listen")
            #expect(error.rule.contains("aws.allowNonLoopback"))
        }
    }

    /// No AWS configuration of the machine leaks into the clients; no metadata service is asked.
    static let awsEnvironment = [
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
    ]

    /// A daemon with `aws.listen` on a free loopback port, and its `http://127.0.0.1:PORT`.
    func withTCPListener(_ body: (TestDaemon, String) async throws -> Void) async throws {
        try await TestDaemon.with(behavior: Self.behavior, configure: {
            $0.awsListen = ListenAddress(host: "127.0.0.1", port: 0)
            $0.api.deliveryWait = TestDaemon.patientDeliveryWait
        }) { daemon in
            let port = try await daemon.awsListenPort()
            try await body(daemon, "http://127.0.0.1:\(port)")
        }
    }
}
