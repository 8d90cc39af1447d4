import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
@testable import ParticipantAPI
import ParticipantOutbox
import ParticipantTestSupport
import ParticipantWire
import Synchronization
import Testing

/// Delivery as the API sees it, recorded: what the routes tell it, and what it answers.
final class RecordingDelivery: DeliveryControl {
    private let state = Mutex<(accepted: [String], flushes: Int)>(([], 0))
    let problems: [String]

    init(problems: [String] = []) {
        self.problems = problems
    }

    var accepted: [String] { state.withLock { $0.accepted } }
    var flushes: Int { state.withLock { $0.flushes } }

    func accepted(instance: String, kind: ItemKind) { state.withLock { $0.accepted.append(instance) } }
    func flush() { state.withLock { $0.flushes += 1 } }
    func senderStates() -> [String: SenderState] {
        [InstanceName.defaultName: SenderState(inFlight: 3, quotaRate: 7, quotaTokens: 2, problems: problems)]
    }
    func healthProblems() -> [String] { problems }
    func fleetStats() async -> FleetStats? { nil }
}

/// The routes in process, without a socket (HummingbirdTesting's router framework), over an
/// in-memory outbox: what each answers, and what it tells delivery.
@Suite struct DaemonAPIRouteTests {
    let clock = ManualClock()

    func withAPI(
        delivery: RecordingDelivery = RecordingDelivery(),
        _ body: @escaping @Sendable (any TestClientProtocol, Outbox) async throws -> Void
    ) async throws {
        try await withTestOutbox(clock: clock) { outbox in
            var configuration = APIConfiguration()
            configuration.instanceNames = [InstanceName.defaultName]
            let api = DaemonAPI(
                outbox: outbox, configuration: configuration, delivery: delivery,
                health: HealthCheck(outbox: outbox, maxWaitingAge: .seconds(300), delivery: delivery),
                access: .open, metrics: nil
            )
            let app = Application(router: api.router(), logger: Logger(label: "test"))
            try await app.test(.router) { client in try await body(client, outbox) }
        }
    }

    func post(_ client: any TestClientProtocol, _ json: String) async throws -> TestResponse {
        try await client.execute(uri: "/v1/events", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: json))
    }

    func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try WireCoding.decoder().decode(type, from: Data(buffer: response.body))
    }

    @Test("POST /v1/events: 202 stored and delivery told once; 200 for the same again; 409 for other parameters")
    func submitAnswers() async throws {
        let delivery = RecordingDelivery()
        try await withAPI(delivery: delivery) { client, outbox in
            let typing = #"{"contentType":"application/vnd.amazonaws.connect.event.typing","clientToken":"t1","connectionToken":"c1"}"#
            let created = try await post(client, typing)
            #expect(created.status == .accepted)
            let record = try decode(SubmitResponse.self, created)
            #expect(record.created && record.event.clientToken == "t1" && record.event.state == .queued)
            #expect(try await outbox.event(clientToken: "t1")?.state == .queued, "on disk before the answer")
            #expect(delivery.accepted == [InstanceName.defaultName])

            let again = try await post(client, typing)
            #expect(again.status == .ok)
            #expect(try decode(SubmitResponse.self, again).created == false)
            #expect(delivery.accepted.count == 1, "a replay wakes no sender")

            let other = try await post(client, #"{"contentType":"application/vnd.amazonaws.connect.event.typing","clientToken":"t1","connectionToken":"c2"}"#)
            #expect(other.status == .conflict)
            #expect(try decode(ErrorBody.self, other).code == APIErrorCode.idempotentParameterMismatch)
        }
    }

    @Test("Bad input: 400 naming the field and the rule, nothing stored, delivery not told", arguments: [
        (#"{"connectionToken":"c"}"#, "contentType is required"),
        (#"{"contentType":"application/vnd.amazonaws.connect.event.typing"}"#, "connectionToken is required"),
        (#"{"contentType":"application/vnd.amazonaws.connect.event.typing","connectionToken":"c","instance":"nope"}"#, "instance"),
        ("[1]", "JSON object"),
    ])
    func badInput(json: String, expected: String) async throws {
        let delivery = RecordingDelivery()
        try await withAPI(delivery: delivery) { client, outbox in
            let response = try await post(client, json)
            #expect(response.status == .badRequest)
            let error = try decode(ErrorBody.self, response)
            #expect(error.message.contains(expected), "\(error.message)")
            #expect(try await outbox.countsByState().values.reduce(0, +) == 0)
            #expect(delivery.accepted.isEmpty)
        }
    }

    @Test("GET /v1/events/{clientToken}: the record, or 404 EventNotFound")
    func eventLookup() async throws {
        try await withAPI { client, _ in
            _ = try await post(client, #"{"contentType":"application/vnd.amazonaws.connect.event.typing","clientToken":"t1","connectionToken":"c1"}"#)
            let found = try await client.execute(uri: "/v1/events/t1", method: .get)
            #expect(found.status == .ok)
            #expect(try decode(EventRecord.self, found).clientToken == "t1")
            let missing = try await client.execute(uri: "/v1/events/nope", method: .get)
            #expect(missing.status == .notFound)
            #expect(try decode(ErrorBody.self, missing).code == "EventNotFound")
        }
    }

    @Test("Health and stats say what delivery reports: its problems, each sender's requests in flight and rate")
    func healthAndStatsFromDelivery() async throws {
        let delivery = RecordingDelivery(problems: ["the service has not answered since then"])
        try await withAPI(delivery: delivery) { client, _ in
            let health = try decode(HealthReport.self, try await client.execute(uri: "/v1/health", method: .get))
            #expect(health.status == "degraded")
            #expect(health.problems == delivery.problems)
            let stats = try decode(QueueStats.self, try await client.execute(uri: "/v1/queue/stats", method: .get))
            #expect(stats.requestsInFlight == 3)
            #expect(stats.instances?[InstanceName.defaultName]?.quotaRate == 7)
            #expect(stats.instances?[InstanceName.defaultName]?.problems == delivery.problems)
        }
    }

    @Test("POST /v1/queue/flush tells delivery to send now")
    func flushTellsDelivery() async throws {
        let delivery = RecordingDelivery()
        try await withAPI(delivery: delivery) { client, _ in
            let response = try await client.execute(uri: "/v1/queue/flush", method: .post)
            #expect(response.status == .ok)
            #expect(delivery.flushes == 1)
        }
    }

    @Test("GET /v1/events answers in pages of at most 1,000, each full page with the cursor of the next; the client joins them")
    func listPages() async throws {
        try await withAPI { client, outbox in
            for index in 0..<25 { try await submitEvent(outbox, .typing, "p\(index)", connection: "c\(index)") }
            var seen: [String] = []
            var cursor: Int64?
            var pages = 0
            repeat {
                let response = try await client.execute(uri: "/v1/events?limit=10" + (cursor.map { "&cursor=\($0)" } ?? ""), method: .get)
                #expect(response.status == .ok)
                let page = try WireCoding.decoder().decode(EventList.self, from: Data(buffer: response.body))
                seen += page.events.map(\.clientToken)
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            #expect(seen == (0..<25).reversed().map { "p\($0)" }, "newest first, each once")
            let tooMany = try await client.execute(uri: "/v1/events?limit=1001", method: .get)
            #expect(tooMany.status == .badRequest && String(buffer: tooMany.body).contains("limit must be a whole number from 1 to 1000"))
            let badCursor = try await client.execute(uri: "/v1/events?cursor=x", method: .get)
            #expect(badCursor.status == .badRequest && String(buffer: badCursor.body).contains("cursor"))
            // Waiting states oldest first, paged the same way.
            let queued = try await client.execute(uri: "/v1/events?state=queued&limit=20", method: .get)
            let first = try WireCoding.decoder().decode(EventList.self, from: Data(buffer: queued.body))
            let rest = try await client.execute(uri: "/v1/events?state=queued&limit=20&cursor=\(try #require(first.nextCursor))", method: .get)
            let second = try WireCoding.decoder().decode(EventList.self, from: Data(buffer: rest.body))
            #expect((first.events + second.events).map(\.clientToken) == (0..<25).map { "p\($0)" } && second.nextCursor == nil)
        }
    }
}
