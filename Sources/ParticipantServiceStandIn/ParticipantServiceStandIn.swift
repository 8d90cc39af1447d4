import Foundation
import NIOFoundationCompat
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ParticipantWire
import Synchronization

/// A stand-in for the Amazon Connect Participant Service's SendEvent, SendMessage,
/// DisconnectParticipant and CreateParticipantConnection: real HTTP/1.1 on 127.0.0.1.
///
/// CreateParticipantConnection (`Type: [CONNECTION_CREDENTIALS]`) gives a new connection token
/// that lives ``setConnectionLifetime(_:)`` (a day by default, as the service's); a request with
/// one after its `Expiry` gets 403 and is counted (``expiredTokenUses``). A participant whose chat
/// ended (``endParticipant(_:)``, or its disconnect) gets 403 from CreateParticipantConnection, and
/// so does every connection token made for it.
///
/// A chat ends when its participant is disconnected (or ``endChat(bearer:)`` ends it): from then
/// on every request with its connection token gets 403 AccessDeniedException, as the service
/// answers a token that is no longer valid (a disconnect sent again with its ClientToken still
/// gets its 200).
///
/// It checks every request against the wire format (method, path, `X-Amz-Bearer`, JSON body,
/// field rules) and answers a wrong one with 400 ValidationException, counting it in
/// ``invalidRequestCount``. A right one gets what ``Behavior`` says: the service's success
/// answer (idempotent by ClientToken, as the real service is), any error the service can give,
/// a dropped connection, or a slow answer.
public final class ParticipantServiceStandIn: Sendable {
    /// What the stand-in does with a request that passed the wire checks.
    public indirect enum Behavior: Sendable {
        /// 200 `{"Id", "AbsoluteTime"}`; the same ClientToken always gets the same answer.
        case accept
        /// An error as the service sends it: status, `x-amzn-ErrorType` header, `{"message"}` body.
        case error(status: Int, code: String, message: String)
        /// Close the connection without answering.
        case dropConnection
        /// Wait, then behave as `then`.
        case delay(Duration, then: Behavior)
        /// Hold the request until `gate` opens, then behave as `then`: for a test that needs a
        /// request in flight until it says so, however slow the machine.
        case wait(Gate, then: Behavior)
    }

    /// Holds requests (``Behavior/wait(_:then:)``) until it is opened; open, it holds none.
    public final class Gate: Sendable {
        private let state = Mutex<(isOpen: Bool, waiting: [@Sendable () -> Void])>((false, []))

        public init() {}

        /// Lets every held request go on, and every later one through at once.
        public func open() {
            let waiting = state.withLock { state in
                state.isOpen = true
                defer { state.waiting = [] }
                return state.waiting
            }
            for resume in waiting { resume() }
        }

        func whenOpen(_ resume: @escaping @Sendable () -> Void) {
            let now = state.withLock { state in
                if state.isOpen { return true }
                state.waiting.append(resume)
                return false
            }
            if now { resume() }
        }
    }

    /// One request as the stand-in received it.
    public struct ReceivedRequest: Sendable {
        public var method: String
        public var path: String
        public var bearer: String?
        public var contentType: String?
        public var content: String?
        public var clientToken: String?
        /// Why the request breaks the wire format; `nil` when it is valid.
        public var problem: String?
        public var receivedAt: Date

        /// A SendMessage call (`POST /participant/message`), not a SendEvent one.
        public var isMessage: Bool { path == "/participant/message" }
        /// A DisconnectParticipant call (`POST /participant/disconnect`).
        public var isDisconnect: Bool { path == "/participant/disconnect" }
        /// A CreateParticipantConnection call (`POST /participant/connection`): `bearer` is the participant token.
        public var isConnection: Bool { path == "/participant/connection" }
        /// CreateParticipantConnection's `ConnectParticipant`.
        public var connectParticipant: Bool?
    }

    /// What the stand-in answered 200 for, by ClientToken: the first acceptance.
    public struct AcceptedEvent: Sendable, Equatable {
        public var clientToken: String
        public var contentType: String
        public var content: String?
        public var bearer: String
        public var id: String
        public var absoluteTime: String
        /// How many 200 answers this ClientToken got.
        public var acceptCount: Int
    }

    /// The service's quota: a token bucket per stand-in (per Connect instance, for the real one).
    private struct Quota {
        var rate: Double
        var burst: Double
        var tokens: Double
        var last: ContinuousClock.Instant

        mutating func allow(at now: ContinuousClock.Instant) -> Bool {
            let elapsed = now - last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            tokens = min(burst, tokens + seconds * rate)
            last = now
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }
    }

    private struct State {
        /// By bucket: `send` (SendEvent and SendMessage), `disconnect`.
        var quotas: [String: Quota] = [:]
        var throttled = 0
        var throttledRequests: [String] = []
        var requests: [ReceivedRequest] = []
        var accepted: [String: AcceptedEvent] = [:]
        var acceptedOrder: [String] = []
        /// SendMessage's, apart: its ClientTokens are the operation's own.
        var acceptedMessages: [String: AcceptedEvent] = [:]
        var acceptedMessageOrder: [String] = []
        /// DisconnectParticipant's, by ClientToken, in order.
        var disconnects: [String: AcceptedEvent] = [:]
        var disconnectOrder: [String] = []
        /// Connection tokens of chats that ended: every request with one is refused (403).
        var ended: Set<String> = []
        /// Participant tokens whose chat ended: CreateParticipantConnection and their connections get 403.
        var endedParticipants: Set<String> = []
        var connectionLifetime: Duration = .seconds(86_400)
        /// The connection tokens CreateParticipantConnection gave.
        var connections: [String: ConnectionCreation] = [:]
        var creations: [ConnectionCreation] = []
        var expiredTokenUses = 0
        /// Every item answered 200 the first time, in order: (path, ClientToken, bearer).
        var arrivals: [Arrival] = []
        var behavior: @Sendable (ReceivedRequest) -> Behavior
    }

    private let state: Mutex<State>
    private let channel: any Channel
    public let port: Int
    private let secure: Bool

    /// `http://127.0.0.1:PORT` (with TLS: `https://localhost:PORT`, the name its certificate
    /// is for), for the daemon's `endpoint`.
    public var endpoint: String { secure ? "https://localhost:\(port)" : "http://127.0.0.1:\(port)" }

    /// Starts listening on 127.0.0.1 (`port` 0 picks a free one); with `tls`, HTTPS.
    public static func start(
        port: Int = 0,
        tls: TLSConfiguration? = nil,
        behavior: @escaping @Sendable (ReceivedRequest) -> Behavior = { _ in .accept }
    ) async throws -> ParticipantServiceStandIn {
        let box = StandInBox()
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                }.flatMap {
                    channel.pipeline.configureHTTPServerPipeline()
                }.flatMap {
                    channel.pipeline.addHandler(RequestHandler(box: box))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        let standIn = ParticipantServiceStandIn(channel: channel, secure: tls != nil, behavior: behavior)
        box.server.withLock { $0 = standIn }
        return standIn
    }

    private init(channel: any Channel, secure: Bool, behavior: @escaping @Sendable (ReceivedRequest) -> Behavior) {
        self.channel = channel
        self.secure = secure
        self.port = channel.localAddress?.port ?? 0
        self.state = Mutex(State(behavior: behavior))
    }

    public func stop() async throws {
        try await channel.close()
    }

    /// Changes what the stand-in does from the next request on.
    public func setBehavior(_ behavior: @escaping @Sendable (ReceivedRequest) -> Behavior) {
        state.withLock { $0.behavior = behavior }
    }

    /// Answers 429 ThrottlingException to valid SendEvent and SendMessage requests (one bucket)
    /// beyond `rate` per second with `burst`, as the service does beyond its quota.
    public func setQuota(rate: Double, burst: Int) {
        state.withLock { $0.quotas["send"] = Quota(rate: rate, burst: Double(burst), tokens: Double(burst), last: .now) }
    }

    /// DisconnectParticipant's own quota (the service's: 3/s, burst 5).
    public func setDisconnectQuota(rate: Double, burst: Int) {
        state.withLock { $0.quotas["disconnect"] = Quota(rate: rate, burst: Double(burst), tokens: Double(burst), last: .now) }
    }

    /// Ends the chat of this connection token, as an agent or the customer leaving does: every
    /// later request with it gets 403 AccessDeniedException.
    public func endChat(bearer: String) {
        _ = state.withLock { $0.ended.insert(bearer) }
    }

    /// One CreateParticipantConnection answered 200.
    public struct ConnectionCreation: Sendable, Equatable {
        public var participantToken: String
        public var connectParticipant: Bool
        public var connectionToken: String
        public var createdAt: Date
        public var expiry: Date
    }

    /// How long the connection tokens CreateParticipantConnection gives from now on live.
    public func setConnectionLifetime(_ lifetime: Duration) {
        state.withLock { $0.connectionLifetime = lifetime }
    }

    /// CreateParticipantConnection's own quota (the service's: 6/s, burst 9).
    public func setConnectionQuota(rate: Double, burst: Int) {
        state.withLock { $0.quotas["connection"] = Quota(rate: rate, burst: Double(burst), tokens: Double(burst), last: .now) }
    }

    /// Ends the chat of this participant: CreateParticipantConnection and every connection token
    /// made for it get 403 from now on.
    public func endParticipant(_ participantToken: String) {
        _ = state.withLock { $0.endedParticipants.insert(participantToken) }
    }

    /// Every CreateParticipantConnection answered 200, in order.
    public var connectionCreations: [ConnectionCreation] { state.withLock { $0.creations } }

    /// Requests that came with a connection token of CreateParticipantConnection's after its Expiry.
    public var expiredTokenUses: Int { state.withLock { $0.expiredTokenUses } }

    /// An item's first 200, in the order of all of them.
    public struct Arrival: Sendable, Equatable, Codable {
        public var operation: String
        public var clientToken: String
        public var bearer: String
        public var content: String?
    }

    /// What the stand-in saw, for a benchmark in another process (`GET /standin/report`).
    public struct Report: Codable, Sendable {
        public struct Creation: Codable, Sendable {
            public var participantToken: String
            public var connectionToken: String
            public var createdAt: Double
            public var expiry: Double
        }
        public var arrivals: [Arrival]
        /// How many 200s each ClientToken got, per operation (`SendMessage TOKEN`: count).
        public var acceptCounts: [String: Int]
        public var requests: Int
        public var invalidRequests: Int
        public var throttled: Int
        public var throttledRequests: [String]
        public var expiredTokenUses: Int
        public var creations: [Creation]
        /// Requests per bearer (connection or participant token).
        public var requestsByBearer: [String: Int]
    }

    public var report: Report {
        state.withLock { state in
            var counts: [String: Int] = [:]
            for (token, item) in state.accepted { counts["SendEvent \(token)"] = item.acceptCount }
            for (token, item) in state.acceptedMessages { counts["SendMessage \(token)"] = item.acceptCount }
            for (token, item) in state.disconnects { counts["DisconnectParticipant \(token)"] = item.acceptCount }
            var byBearer: [String: Int] = [:]
            for request in state.requests { byBearer[request.bearer ?? "", default: 0] += 1 }
            return Report(
                arrivals: state.arrivals, acceptCounts: counts, requests: state.requests.count,
                invalidRequests: state.requests.filter { $0.problem != nil }.count, throttled: state.throttled,
                throttledRequests: state.throttledRequests, expiredTokenUses: state.expiredTokenUses,
                creations: state.creations.map {
                    Report.Creation(participantToken: $0.participantToken, connectionToken: $0.connectionToken,
                                    createdAt: $0.createdAt.timeIntervalSince1970, expiry: $0.expiry.timeIntervalSince1970)
                },
                requestsByBearer: byBearer
            )
        }
    }

    /// `GET /standin/report`: ``report`` as JSON; `POST /standin/end-participant` (the body is the
    /// participant token) and `POST /standin/end-chat` (a connection token): a chat ends.
    fileprivate func control(method: HTTPMethod, path: String, body: Data) -> (Int, Data) {
        switch (method, path) {
        case (.GET, "/standin/report"):
            return (200, (try? JSONEncoder().encode(report)) ?? Data())
        case (.POST, "/standin/end-participant"):
            endParticipant(String(decoding: body, as: UTF8.self))
            return (200, Data("{}".utf8))
        case (.POST, "/standin/end-chat"):
            endChat(bearer: String(decoding: body, as: UTF8.self))
            return (200, Data("{}".utf8))
        default:
            return (404, Data(#"{"message":"no such stand-in route"}"#.utf8))
        }
    }

    /// Every disconnect answered 200, in the order first accepted.
    public var disconnects: [AcceptedEvent] {
        state.withLock { state in state.disconnectOrder.compactMap { state.disconnects[$0] } }
    }

    /// How many valid requests were refused for the quota.
    public var throttledCount: Int { state.withLock { $0.throttled } }

    /// The requests refused for the quota: path, ClientToken and time, for a test's message.
    public var throttledRequests: [String] { state.withLock { $0.throttledRequests } }

    public var requests: [ReceivedRequest] { state.withLock { $0.requests } }

    public var invalidRequestCount: Int { state.withLock { $0.requests.filter { $0.problem != nil }.count } }

    /// Every event answered 200, in the order first accepted.
    public var acceptedEvents: [AcceptedEvent] {
        state.withLock { state in state.acceptedOrder.compactMap { state.accepted[$0] } }
    }

    /// Every message answered 200, in the order first accepted.
    public var acceptedMessages: [AcceptedEvent] {
        state.withLock { state in state.acceptedMessageOrder.compactMap { state.acceptedMessages[$0] } }
    }

    // MARK: Answering

    fileprivate func receive(head: HTTPRequestHead, body: ByteBuffer) -> (ReceivedRequest, Behavior) {
        var request = ReceivedRequest(
            method: head.method.rawValue, path: head.uri, bearer: head.headers.first(name: "X-Amz-Bearer"),
            receivedAt: Date()
        )
        request.problem = Self.check(head: head, body: body, into: &request)
        let behavior: Behavior = state.withLock { state in
            state.requests.append(request)
            if let problem = request.problem {
                return .error(status: 400, code: "ValidationException", message: problem)
            }
            if state.quotas[request.isDisconnect ? "disconnect" : request.isConnection ? "connection" : "send"]?.allow(at: .now) == false {
                state.throttled += 1
                state.throttledRequests.append("\(request.path) \(request.clientToken ?? "-") at \(WireCoding.formatTimestamp(request.receivedAt))")
                return .error(status: 429, code: "ThrottlingException", message: "Rate exceeded")
            }
            let denied = ErrorBehaviorText.accessDenied
            if request.isConnection {
                if let bearer = request.bearer, state.endedParticipants.contains(bearer) { return denied }
                return state.behavior(request)
            }
            if let bearer = request.bearer, let made = state.connections[bearer] {
                if state.endedParticipants.contains(made.participantToken) { return denied }
                if made.expiry < Date() {
                    state.expiredTokenUses += 1
                    return denied
                }
            }
            let repeatedDisconnect = request.isDisconnect && state.disconnects[request.clientToken ?? ""]?.bearer == request.bearer
            if let bearer = request.bearer, state.ended.contains(bearer), !repeatedDisconnect {
                return .error(status: 403, code: "AccessDeniedException", message: "You do not have sufficient access to perform this action.")
            }
            return state.behavior(request)
        }
        return (request, behavior)
    }

    /// The success answer for a valid request, as JSON: the first answer for its ClientToken
    /// again, if any (each operation keeps its own tokens).
    fileprivate func accept(_ request: ReceivedRequest) -> Data {
        if request.isConnection {
            let creation = state.withLock { state in
                let now = Date()
                let lifetime = state.connectionLifetime.components
                let creation = ConnectionCreation(
                    participantToken: request.bearer ?? "", connectParticipant: request.connectParticipant ?? false,
                    connectionToken: "ct-" + UUID().uuidString.lowercased(), createdAt: now,
                    expiry: now.addingTimeInterval(Double(lifetime.seconds) + Double(lifetime.attoseconds) / 1e18)
                )
                state.connections[creation.connectionToken] = creation
                state.creations.append(creation)
                return creation
            }
            let object: [String: Any] = [
                "ConnectionCredentials": ["ConnectionToken": creation.connectionToken, "Expiry": WireCoding.formatTimestamp(creation.expiry)],
            ]
            return (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        }
        if request.isDisconnect {
            state.withLock { state in
                let token = request.clientToken ?? UUID().uuidString
                if var existing = state.disconnects[token] {
                    existing.acceptCount += 1
                    state.disconnects[token] = existing
                } else {
                    state.disconnects[token] = AcceptedEvent(
                        clientToken: token, contentType: "", content: nil, bearer: request.bearer ?? "", id: "",
                        absoluteTime: WireCoding.formatTimestamp(Date()), acceptCount: 1
                    )
                    state.disconnectOrder.append(token)
                    state.arrivals.append(Arrival(operation: "DisconnectParticipant", clientToken: token, bearer: request.bearer ?? "", content: nil))
                }
                if let bearer = request.bearer {
                    state.ended.insert(bearer)
                    // A participant disconnected through a connection made for it has left.
                    if let made = state.connections[bearer] { state.endedParticipants.insert(made.participantToken) }
                }
            }
            // DisconnectParticipantResponse has no members.
            return Data("{}".utf8)
        }
        let accepted = state.withLock { state in
            let token = request.clientToken ?? ""
            let existing = request.isMessage ? state.acceptedMessages[token] : state.accepted[token]
            if var existing {
                existing.acceptCount += 1
                if request.isMessage { state.acceptedMessages[token] = existing } else { state.accepted[token] = existing }
                return existing
            }
            let item = AcceptedEvent(
                clientToken: token, contentType: request.contentType ?? "", content: request.content,
                bearer: request.bearer ?? "", id: UUID().uuidString.lowercased(),
                absoluteTime: WireCoding.formatTimestamp(Date()), acceptCount: 1
            )
            state.arrivals.append(Arrival(operation: request.isMessage ? "SendMessage" : "SendEvent", clientToken: token, bearer: request.bearer ?? "", content: request.content))
            if request.isMessage {
                state.acceptedMessages[token] = item
                state.acceptedMessageOrder.append(token)
            } else {
                state.accepted[token] = item
                state.acceptedOrder.append(token)
            }
            return item
        }
        if request.isMessage {
            let output = SendMessageOutput(id: accepted.id, absoluteTime: accepted.absoluteTime, messageMetadata: .init(messageProcessingStatus: "PROCESSING"))
            return (try? JSONEncoder().encode(output)) ?? Data()
        }
        return (try? JSONEncoder().encode(SendEventOutput(id: accepted.id, absoluteTime: accepted.absoluteTime))) ?? Data()
    }

    /// The wire checks; fills `request` with what it could read. Returns the first problem found.
    static func check(head: HTTPRequestHead, body: ByteBuffer, into request: inout ReceivedRequest) -> String? {
        guard head.method == .POST, ["/participant/event", "/participant/message", "/participant/disconnect", "/participant/connection"].contains(head.uri) else {
            return "expected POST /participant/event, /participant/message, /participant/disconnect or /participant/connection, got \(head.method.rawValue) \(head.uri)"
        }
        guard let bearer = head.headers.first(name: "X-Amz-Bearer"), (1...1_000).contains(bearer.unicodeScalars.count) else {
            return "the X-Amz-Bearer header must hold the connection token (1 to 1000 characters)"
        }
        guard head.headers.first(name: "Content-Type")?.hasPrefix("application/json") == true else {
            return "Content-Type must be application/json"
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
            return "the body must be a JSON object"
        }
        if head.uri == "/participant/connection" {
            return checkConnection(object, into: &request)
        }
        let known: Set = head.uri == "/participant/disconnect" ? ["ClientToken"] : ["ContentType", "Content", "ClientToken"]
        if let unknown = object.keys.first(where: { !known.contains($0) }) {
            return "unknown member \(unknown)"
        }
        request.contentType = object["ContentType"] as? String
        request.content = object["Content"] as? String
        request.clientToken = object["ClientToken"] as? String
        if head.uri == "/participant/message" {
            return checkMessage(request)
        }
        if head.uri == "/participant/disconnect" {
            // ClientToken is optional in the model; the daemon always sends one.
            guard let token = request.clientToken, (1...500).contains(token.unicodeScalars.count) else {
                return "ClientToken must be present, 1 to 500 characters"
            }
            return nil
        }
        guard let contentType = request.contentType, let type = EventContentType(rawValue: contentType) else {
            return "ContentType must be one of the four event types"
        }
        if object["Content"] != nil {
            guard let content = request.content, (1...16_384).contains(content.unicodeScalars.count) else {
                return "Content must be a string of 1 to 16384 characters"
            }
        }
        if type.isReceipt {
            guard let content = request.content,
                let receipt = try? JSONSerialization.jsonObject(with: Data(content.utf8)) as? [String: Any],
                let messageId = receipt["messageId"] as? String, !messageId.isEmpty
            else {
                return "Content of a receipt must be a JSON object with a messageId"
            }
        }
        guard let token = request.clientToken, (1...500).contains(token.unicodeScalars.count) else {
            // The daemon always sends one: it must be stable across attempts.
            return "ClientToken must be present, 1 to 500 characters"
        }
        return nil
    }

    /// CreateParticipantConnection's rules: `Type` a non-empty list of the three types (this
    /// stand-in gives CONNECTION_CREDENTIALS, which the daemon must ask for), `ConnectParticipant`
    /// a boolean if present.
    static func checkConnection(_ object: [String: Any], into request: inout ReceivedRequest) -> String? {
        if let unknown = object.keys.first(where: { !["Type", "ConnectParticipant"].contains($0) }) {
            return "unknown member \(unknown)"
        }
        guard let types = object["Type"] as? [String], !types.isEmpty,
              types.allSatisfy({ ["WEBSOCKET", "CONNECTION_CREDENTIALS", "WEBRTC_CONNECTION"].contains($0) }) else {
            return "Type must be a non-empty list of WEBSOCKET, CONNECTION_CREDENTIALS, WEBRTC_CONNECTION"
        }
        guard types.contains("CONNECTION_CREDENTIALS") else {
            return "Type must include CONNECTION_CREDENTIALS for a connection token"
        }
        if let connect = object["ConnectParticipant"] {
            guard let flag = connect as? Bool else { return "ConnectParticipant must be a boolean" }
            request.connectParticipant = flag
        }
        return nil
    }

    /// SendMessage's rules: one of its content types, Content of 1 to that type's length, a ClientToken.
    static func checkMessage(_ request: ReceivedRequest) -> String? {
        guard let contentType = request.contentType, let type = MessageContentType(rawValue: contentType) else {
            return "ContentType must be one of the message types (\(MessageContentType.allCases.map(\.rawValue).joined(separator: ", ")))"
        }
        guard let content = request.content, (1...type.maxContentLength).contains(content.unicodeScalars.count) else {
            return "Content must be a string of 1 to \(type.maxContentLength) characters for \(contentType)"
        }
        guard let token = request.clientToken, (1...500).contains(token.unicodeScalars.count) else {
            return "ClientToken must be present, 1 to 500 characters"
        }
        return nil
    }
}

/// The service's answer to a token that is no longer valid.
private enum ErrorBehaviorText {
    static let accessDenied = ParticipantServiceStandIn.Behavior.error(
        status: 403, code: "AccessDeniedException", message: "You do not have sufficient access to perform this action."
    )
}

/// Lets the channel handlers reach the stand-in created after the bind.
private final class StandInBox: Sendable {
    let server = Mutex<ParticipantServiceStandIn?>(nil)
}

private final class RequestHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let box: StandInBox
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(box: StandInBox) {
        self.box = box
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head, let server = box.server.withLock({ $0 }) else {
                context.close(promise: nil)
                return
            }
            if head.uri.hasPrefix("/standin/") {
                // The stand-in's own routes, for a benchmark in another process.
                let (status, answer) = server.control(method: head.method, path: head.uri, body: Data(buffer: body))
                respond(status: status, headers: [:], body: answer, keepAlive: head.isKeepAlive, context: context)
                return
            }
            let (request, behavior) = server.receive(head: head, body: body)
            perform(behavior, request: request, server: server, keepAlive: head.isKeepAlive, context: context)
        }
    }

    private func perform(
        _ behavior: ParticipantServiceStandIn.Behavior, request: ParticipantServiceStandIn.ReceivedRequest,
        server: ParticipantServiceStandIn, keepAlive: Bool, context: ChannelHandlerContext
    ) {
        switch behavior {
        case .accept:
            let body = server.accept(request)
            respond(status: 200, headers: [:], body: body, keepAlive: keepAlive, context: context)
        case .error(let status, let code, let message):
            let body = (try? JSONSerialization.data(withJSONObject: ["message": message])) ?? Data()
            respond(status: status, headers: ["x-amzn-ErrorType": "\(code):http://internal.amazon.com/coral/com.amazonaws.connectparticipant/"],
                    body: body, keepAlive: keepAlive, context: context)
        case .dropConnection:
            context.close(promise: nil)
        case .wait(let gate, let then):
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            gate.whenOpen {
                eventLoop.execute {
                    let (handler, context) = loopBound.value
                    handler.perform(then, request: request, server: server, keepAlive: keepAlive, context: context)
                }
            }
        case .delay(let duration, let then):
            let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {
                let (handler, context) = loopBound.value
                handler.perform(then, request: request, server: server, keepAlive: keepAlive, context: context)
            }
        }
    }

    private func respond(status: Int, headers: [String: String], body: Data, keepAlive: Bool, context: ChannelHandlerContext) {
        var responseHead = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status))
        responseHead.headers.add(name: "Content-Type", value: "application/json")
        responseHead.headers.add(name: "Content-Length", value: "\(body.count)")
        for (name, value) in headers {
            responseHead.headers.add(name: name, value: value)
        }
        if !keepAlive { responseHead.headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
