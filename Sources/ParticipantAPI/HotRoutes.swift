import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTPTypes
import ParticipantInput
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// The socket API's hottest routes, `POST /v1/events`, `/v1/messages`, `/v1/disconnect` and
/// `/v1/events/batch`, answered in the connection's channel pipeline (``HotRouteHandler``) instead of through
/// Hummingbird's router: no task per request, no request body sequence, no router or middleware,
/// and the outbox writer's commit answered from the event loop with no hop through Swift's shared
/// pool. Hummingbird cost about 126,000 instructions a request (BENCHMARKS.md, "Issue 31").
///
/// One API all the same: the body is decoded by ``DaemonAPI/decodeItem(_:body:)``, stored by
/// ``DaemonAPI/stored(_:item:logger:)``, answered by ``DaemonAPI/submitted(_:_:)`` and
/// ``APIError`` (a batch by ``DaemonAPI/decodeBatch(_:)`` and ``DaemonAPI/batchAnswer(_:committed:logger:)``),
/// the same code the routes use. A request is taken here only when nothing the
/// router's path checks could answer otherwise (``take(_:peer:)``); every other request, and every
/// request that arrives while one of Hummingbird's is unanswered on the connection, goes to the
/// router as before.
public struct HotRoutes: Sendable {
    let api: DaemonAPI

    init(api: DaemonAPI) {
        self.api = api
    }

    enum Route: Sendable, Equatable {
        case item(DaemonAPI.ItemRoute)
        case batch
    }

    /// A request this path answers: its route, and the bytes of the body budget it holds.
    struct Taken {
        let route: Route
        let reserved: Int
        let length: Int
    }

    /// Whether this path answers the request with `head`, reserving its body's bytes in the body
    /// budget if so. `nil` (the router answers) for: another route (or a query string); a peer
    /// the access rules refuse (the router's 403 and its log line); a body without a
    /// `Content-Length`, or larger than `api.maxBodyBytes` (`api.maxBatchBytes` for a batch:
    /// the router's 413 while it still
    /// arrives); a `Content-Type` the API refuses (415); `Expect` or `Connection: close`
    /// (Hummingbird closes after its answer); or a body budget that has no room now, or has
    /// requests waiting (the router's request waits its turn there).
    func take(_ head: HTTPRequest, peer: ConnectionPeer?) -> Taken? {
        guard head.method == .post, let path = head.path else { return nil }
        let route: Route
        switch path {
        case "/v1/events": route = .item(.event)
        case "/v1/messages": route = .item(.message)
        case "/v1/disconnect": route = .item(.disconnect)
        case "/v1/events/batch": route = .batch
        default: return nil
        }
        let limit = route == .batch ? api.configuration.maxBatchBytes : api.configuration.maxBodyBytes
        // The fields in one pass: `HTTPFields`' subscript joins a name's values through generic
        // code, about 2,000 instructions a look-up (BENCHMARKS.md, "Issue 31, sixth round"). A
        // field of these four named twice is the router's, as its joined value would be.
        var declared: String?
        var contentType: String?
        var connection = false
        for field in head.headerFields {
            switch field.name {
            case .expect, .transferEncoding:
                return nil
            case .connection:
                guard !connection, field.value.lowercased() == "keep-alive" else { return nil }
                connection = true
            case .contentLength:
                guard declared == nil else { return nil }
                declared = field.value
            case .contentType:
                guard contentType == nil else { return nil }
                contentType = field.value
            default:
                break
            }
        }
        guard let declared, let length = Int(declared), length >= 0, length <= limit else { return nil }
        do {
            try RequestDecoding.checkMediaType(contentType)
        } catch {
            return nil
        }
        guard api.access.allows(peer) else { return nil }
        guard let reserved = api.bodies.tryReserve(length) else { return nil }
        return Taken(route: route, reserved: reserved, length: length)
    }

    /// A taken request's answer: its status and JSON body, or the API's refusal.
    typealias Answer = Result<(HTTPResponse.Status, [UInt8]), APIError>

    /// Decodes, stores and answers a taken request; `answer` runs on `eventLoop` once the item is
    /// on disk (or refused). The body's reservation is given back once it is decoded.
    func answer(
        _ taken: Taken, body: ByteBuffer, peer: ConnectionPeer?, logger: Logger, on eventLoop: any EventLoop,
        _ answer: @escaping @Sendable (Answer) -> Void
    ) {
        let bytes = Data(buffer: body, byteTransferStrategy: .noCopy)
        let route: DaemonAPI.ItemRoute
        switch taken.route {
        case .batch:
            batch(taken, body: bytes, peer: peer, logger: logger, on: eventLoop, answer)
            return
        case .item(let item):
            route = item
        }
        let item: ValidatedItem
        do throws(APIError) {
            defer { api.bodies.release(taken.reserved) }
            item = try api.decodeItem(route, body: bytes)
        } catch {
            answer(.failure(error))
            return
        }
        let api = api
        api.outbox.submit([item], peer: ConnectionPeer.outboxID(of: peer)) { committed in
            // On the writer's thread: everything after the commit runs on the event loop.
            eventLoop.execute {
                answer(api.stored(committed, item: item, logger: logger).map { DaemonAPI.submitted($0, item) })
            }
        }
    }

    private func batch(
        _ taken: Taken, body: Data, peer: ConnectionPeer?, logger: Logger, on eventLoop: any EventLoop,
        _ answer: @escaping @Sendable (Answer) -> Void
    ) {
        let decoded: [Result<ValidatedEvent, RequestError>]
        do throws(APIError) {
            defer { api.bodies.release(taken.reserved) }
            decoded = try api.decodeBatch(body)
        } catch {
            answer(.failure(error))
            return
        }
        let api = api
        @Sendable func finish(_ committed: Result<[Result<SubmitOutcome, OutboxError>], any Error>) {
            answer(api.batchAnswer(decoded, committed: committed, logger: logger).map { (.ok, $0) })
        }
        let valid = decoded.compactMap { try? $0.get() }
        guard !valid.isEmpty else {
            finish(.success([]))
            return
        }
        api.outbox.submit(valid.map(ValidatedItem.event), peer: ConnectionPeer.outboxID(of: peer)) { committed in
            eventLoop.execute { finish(committed) }
        }
    }
}

extension DaemonAPI {
    /// The hot routes of the socket's listener (``HotRoutes``).
    public func hotRoutes() -> HotRoutes {
        HotRoutes(api: self)
    }
}

/// Sits after Hummingbird's connection state handler, in front of its request handling: answers
/// the requests ``HotRoutes`` takes and passes every other part on, keeping a connection's
/// answers in the order of its requests (HTTP/1.1 pipelining):
/// - a request is taken only while no request passed to Hummingbird is unanswered;
/// - while a taken request is being answered, whatever arrives after it (parts, errors, the end
///   of the input) waits here until the answer is written; then it is handled in order. The
///   connection is read at most once more meanwhile, and not at all while anything waits here
///   (backpressure, ``letsRead(answering:held:readWhileAnswering:)``): so a client waiting for
///   its answer costs the event loop no change of the socket's registration (two `epoll_ctl`
///   calls a request), and a pipelining client gets no more than one read's bytes held.
/// The handlers in front of it (the request timeout and parse-error answers, the idle timeout,
/// graceful shutdown's close after the answer) see taken requests and their answers as any other.
final class HotRouteHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let routes: HotRoutes
    private let peer: ConnectionPeer?
    private let logger: Logger

    /// Requests passed to Hummingbird whose answer has not been written completely.
    private var passedUnanswered = 0
    private enum Taken {
        /// Its head taken: its body arriving.
        case reading(HotRoutes.Taken, body: ByteBuffer)
        /// Its end arrived: being stored and answered.
        case answering
    }
    private var taken: Taken?
    /// What arrived after a request being answered, in order.
    private enum Held {
        case part(HTTPRequestPart)
        case error(any Error)
        case event(Any)
    }
    private var held = CircularBuffer<Held>()
    /// A read asked for while a taken request was being answered.
    private var readHeld = false
    /// A read went to the socket while the taken request is being answered.
    private var readWhileAnswering = false
    private var closed = false

    init(routes: HotRoutes, peer: ConnectionPeer?, logger: Logger) {
        self.routes = routes
        self.peer = peer
        self.logger = logger
    }

    /// A taken request is being stored and answered.
    private var answering: Bool {
        if case .answering = taken { return true }
        return false
    }

    private var waits: Bool {
        answering || !held.isEmpty
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if waits {
            held.append(.part(part))
        } else {
            handle(part, context: context)
        }
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            if passedUnanswered == 0, taken == nil, let request = routes.take(head, peer: peer) {
                taken = .reading(request, body: context.channel.allocator.buffer(capacity: request.length))
            } else {
                passedUnanswered += 1
                context.fireChannelRead(wrapInboundOut(part))
            }
        case .body(var bytes):
            if case .reading(let request, var body) = taken {
                // No more than the Content-Length: the HTTP decoder ends the request there.
                taken = nil
                body.writeBuffer(&bytes)
                taken = .reading(request, body: body)
            } else {
                context.fireChannelRead(wrapInboundOut(part))
            }
        case .end:
            guard case .reading(let request, let body) = taken else {
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            taken = .answering
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            routes.answer(request, body: body, peer: peer, logger: logger, on: context.eventLoop) { answer in
                let (handler, context) = loopBound.value
                handler.write(answer, context: context)
            }
        }
    }

    private func write(_ answer: HotRoutes.Answer, context: ChannelHandlerContext) {
        taken = nil
        readWhileAnswering = false
        guard !closed else { return }
        var head: HTTPResponse
        let bytes: [UInt8]
        switch answer {
        case .success(let (status, body)):
            (head, bytes) = (HTTPResponse(status: status, headerFields: [.contentType: "application/json"]), body)
        case .failure(let error):
            let (fields, body) = error.answer
            (head, bytes) = (HTTPResponse(status: error.status, headerFields: fields), body)
        }
        head.headerFields[.contentLength] = String(bytes.count)
        head.headerFields[.date] = HTTPDate.now()
        head.headerFields[.server] = DaemonAPI.serverName
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: bytes))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        resume(context: context)
    }

    /// After an answer: what waited, in order, until the next taken request is being answered.
    private func resume(context: ChannelHandlerContext) {
        var released = false
        defer {
            // Hummingbird's handler hands what it read to its request loop at the end of a read
            // (NIOAsyncChannel yields its buffer on channelReadComplete): parts passed on here,
            // outside a read, would wait there for the connection's next read.
            if released { context.fireChannelReadComplete() }
        }
        while !closed, let next = held.first {
            if answering { return }
            held.removeFirst()
            released = true
            switch next {
            case .part(let part): handle(part, context: context)
            case .error(let error): context.fireErrorCaught(error)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            }
        }
        if answering { return }
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            passedUnanswered = max(0, passedUnanswered - 1)
        }
        context.write(data, promise: promise)
    }

    /// Whether a read asked for now goes to the socket: never while something that arrived waits
    /// here, and once at most while a taken request is being answered.
    static func letsRead(answering: Bool, held: Int, readWhileAnswering: Bool) -> Bool {
        guard held == 0 else { return false }
        return !answering || !readWhileAnswering
    }

    func read(context: ChannelHandlerContext) {
        guard Self.letsRead(answering: answering, held: held.count, readWhileAnswering: readWhileAnswering) else {
            readHeld = true
            return
        }
        if answering { readWhileAnswering = true }
        context.read()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if waits {
            held.append(.error(error))
        } else {
            context.fireErrorCaught(error)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if waits {
            held.append(.event(event))
            return
        }
        if case .reading(let request, _) = taken, let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            // The input ended in the middle of a taken request: it will not complete.
            routes.api.bodies.release(request.reserved)
            taken = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended()
        context.fireChannelInactive()
    }

    /// Hummingbird's connection state handler, in front of this one, does not pass
    /// `channelInactive` on: the pipeline's teardown when the channel closes is what reaches here.
    func handlerRemoved(context: ChannelHandlerContext) {
        ended()
    }

    /// The connection is closed: a request being read gives its bytes of the body budget back.
    private func ended() {
        closed = true
        if case .reading(let request, _) = taken {
            routes.api.bodies.release(request.reserved)
            taken = nil
        }
        held.removeAll()
    }
}

/// The `Date` header's value (RFC 9110's IMF-fixdate), formatted once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let second = Int(spec.tv_sec)
        return cache.withLock { cache in
            if cache.second != second { cache = (second, format(second)) }
            return cache.text
        }
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` for the seconds since 1970.
    static func format(_ secondsSince1970: Int) -> String {
        let days = secondsSince1970 >= 0 ? secondsSince1970 / 86_400 : (secondsSince1970 - 86_399) / 86_400
        let secondOfDay = secondsSince1970 - days * 86_400
        let (year, month, day) = WireCoding.civilDate(daysSince1970: Int64(days))
        let weekday = ((days % 7) + 7) % 7
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(self.days[weekday]), \(two(Int(day))) \(months[Int(month) - 1]) \(year) \(two(secondOfDay / 3_600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }
}
