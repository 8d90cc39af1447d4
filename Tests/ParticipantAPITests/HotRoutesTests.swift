import Foundation
import HTTPTypes
import Logging
import NIOCore
@testable import ParticipantAPI
import ParticipantOutbox
import ParticipantTestSupport
import ParticipantWire
import Testing

/// Which requests the hot routes take (``HotRoutes/take(_:peer:)``): those a client sends, and
/// none that the router alone answers as the API says (a 403, 413, 415, a wait for the body
/// budget, a closing connection). What they answer is in `HotRouteTests` (ParticipantdTests).
@Suite struct HotRoutesTests {
    func withRoutes(access: ResolvedAccess = .open, budgetMegabytes: Int = 64, _ body: @escaping @Sendable (HotRoutes, DaemonAPI) async throws -> Void) async throws {
        try await withTestOutbox(clock: ManualClock()) { outbox in
            var configuration = APIConfiguration()
            configuration.instanceNames = [InstanceName.defaultName]
            configuration.maxBodyMemoryMegabytes = budgetMegabytes
            let delivery = RecordingDelivery()
            let api = DaemonAPI(
                outbox: outbox, configuration: configuration, delivery: delivery,
                health: HealthCheck(outbox: outbox, maxWaitingAge: .seconds(300), delivery: delivery),
                access: access, metrics: nil
            )
            try await body(api.hotRoutes(), api)
        }
    }

    /// A request with a JSON body of 120 bytes, `fields` replacing those of the same name (or,
    /// with `replacing: false`, added beside them).
    static func head(_ method: HTTPRequest.Method = .post, _ path: String = "/v1/events", _ fields: HTTPFields = [:], replacing: Bool = true) -> HTTPRequest {
        var all: HTTPFields = [.contentType: "application/json", .contentLength: "120"]
        if replacing {
            for name in Set(fields.map(\.name)) { all[fields: name] = fields[fields: name] }
        } else {
            all.append(contentsOf: fields)
        }
        return HTTPRequest(method: method, scheme: nil, authority: nil, path: path, headerFields: all)
    }

    @Test("The submissions participantctl, SDK-less programs and the batch send are taken, each holding its body's bytes of the budget")
    func taken() async throws {
        try await withRoutes { routes, api in
            let before = api.bodies.available
            for (path, route) in [("/v1/events", HotRoutes.Route.item(.event)), ("/v1/messages", .item(.message)), ("/v1/disconnect", .item(.disconnect)), ("/v1/events/batch", .batch)] {
                let taken = try #require(routes.take(Self.head(.post, path), peer: nil), "\(path)")
                #expect(taken.route == route && taken.reserved == 120 && taken.length == 120)
                api.bodies.release(taken.reserved)
            }
            let charset = try #require(routes.take(Self.head(.post, "/v1/events", [.contentType: "application/json; charset=utf-8", .connection: "keep-alive"]), peer: nil))
            api.bodies.release(charset.reserved)
            #expect(api.bodies.available == before)
        }
    }

    @Test("Left to the router: other routes and methods, a query, chunked or unknown length, over the limit, another media type, Expect, Connection: close")
    func leftToRouter() async throws {
        try await withRoutes { routes, api in
            let before = api.bodies.available
            let overBody = String(api.configuration.maxBodyBytes + 1)
            let heads: [HTTPRequest] = [
                Self.head(.get, "/v1/events"),
                Self.head(.post, "/v1/events?x=1"),
                Self.head(.post, "/v1/events/"),
                Self.head(.post, "/participant/event"),
                Self.head(.put, "/v1/events"),
                Self.head(.post, "/v1/events", [.transferEncoding: "chunked"]),
                HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/v1/events", headerFields: [.contentType: "application/json"]),
                Self.head(.post, "/v1/events", [.contentLength: overBody]),
                Self.head(.post, "/v1/events/batch", [.contentLength: String(api.configuration.maxBatchBytes + 1)]),
                Self.head(.post, "/v1/events", [.contentLength: "-1"]),
                Self.head(.post, "/v1/events", [.contentType: "text/plain"]),
                Self.head(.post, "/v1/events", [.expect: "100-continue"]),
                Self.head(.post, "/v1/events", [.connection: "close"]),
                // A field named twice: the router's, as its joined value ("120, 120") is.
                Self.head(.post, "/v1/events", [.contentLength: "120", .contentLength: "120"], replacing: false),
                Self.head(.post, "/v1/events", [.contentType: "application/json"], replacing: false),
                Self.head(.post, "/v1/events", [.connection: "keep-alive", .connection: "keep-alive"]),
                Self.head(.post, "/v1/events", [.connection: "keep-alive", .connection: "close"]),
            ]
            for head in heads {
                #expect(routes.take(head, peer: nil) == nil, "\(head.method) \(head.path ?? "") \(head.headerFields)")
            }
            #expect(routes.take(Self.head(.post, "/v1/events/batch", [.contentLength: overBody]), peer: nil).map { api.bodies.release($0.reserved) } != nil,
                    "a batch may be larger than api.maxBodyBytes")
            #expect(api.bodies.available == before, "nothing reserved for a request left to the router")
        }
    }

    @Test("A peer off the allow list is left to the router (its 403 and log line)")
    func accessRules() async throws {
        let access = ResolvedAccess(restrictsPeers: true, users: [1_000], groups: [], adminGroups: [], ownUID: 999)
        try await withRoutes(access: access) { routes, api in
            let refused = ConnectionPeer(PeerCredentials(pid: 1, uid: 4_242, gid: 4_242), groups: [])
            let allowed = ConnectionPeer(PeerCredentials(pid: 1, uid: 1_000, gid: 1_000), groups: [])
            #expect(routes.take(Self.head(), peer: refused) == nil)
            #expect(routes.take(Self.head(), peer: nil) == nil, "an anonymous peer while an allow list is set")
            let taken = try #require(routes.take(Self.head(), peer: allowed))
            api.bodies.release(taken.reserved)
        }
    }

    @Test("With the body budget taken, or a request waiting for it, the request is left to the router, which waits its turn")
    func budget() async throws {
        try await withRoutes(budgetMegabytes: 1) { routes, api in
            let held = try #require(api.bodies.tryReserve(1_048_576 - 100))
            #expect(routes.take(Self.head(.post, "/v1/events", [.contentLength: "101"]), peer: nil) == nil)
            let fits = try #require(routes.take(Self.head(.post, "/v1/events", [.contentLength: "100"]), peer: nil))
            api.bodies.release(fits.reserved)
            api.bodies.release(held)
        }
    }

    @Test("While a taken request is answered the connection is read once more at most, and never while something that arrived waits")
    func readsWhileAnswering() {
        // Idle or reading a request: every read goes through.
        #expect(HotRouteHandler.letsRead(answering: false, held: 0, readWhileAnswering: false))
        // Answering: the first read goes through (the socket's registration is left as it is),
        #expect(HotRouteHandler.letsRead(answering: true, held: 0, readWhileAnswering: false))
        // a second waits for the answer,
        #expect(!HotRouteHandler.letsRead(answering: true, held: 0, readWhileAnswering: true))
        // and none goes while what arrived waits, answering or not.
        #expect(!HotRouteHandler.letsRead(answering: true, held: 1, readWhileAnswering: false))
        #expect(!HotRouteHandler.letsRead(answering: false, held: 3, readWhileAnswering: false))
    }

    @Test("The connection's one request timer: disarmed between requests, armed again at the timed request's deadline, a timeout at or after it")
    func requestTimerChecks() {
        let timeout = TimeAmount.milliseconds(400)
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(RequestWatcher.nextCheck(requestStarted: nil, timeout: timeout, now: start + .seconds(5)) == .disarm)
        // Fired at an earlier request's deadline while a later one is timed: armed for the later one.
        #expect(RequestWatcher.nextCheck(requestStarted: start, timeout: timeout, now: start + .milliseconds(100)) == .armAgain(start + timeout))
        #expect(RequestWatcher.nextCheck(requestStarted: start, timeout: timeout, now: start + timeout) == .timedOut)
        #expect(RequestWatcher.nextCheck(requestStarted: start, timeout: timeout, now: start + .seconds(1)) == .timedOut)
    }
}

extension HotRoutes.Taken: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.route == rhs.route && lhs.reserved == rhs.reserved && lhs.length == rhs.length
    }
}
