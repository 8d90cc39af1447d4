import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// Hummingbird's HTTP/1 channel with the limits a daemon on a shared host needs:
/// - every connection's peer is named when it opens (``ConnectionPeer/identify(_:allowAnonymousRemote:)``);
///   one that cannot be named is closed at once, with a log line;
/// - at most `api.maxConnections` connections, and `access.peerMaxConnections` from one peer: one
///   more is closed at once, not held until its first request, so a peer that opens many idle
///   connections holds no more than its share of the descriptors;
/// and the rest each a JSON error like every other answer:
/// - header bytes and fields (`api.maxHeaderBytes`, `api.maxHeaderCount`): 431;
/// - a request must arrive complete within `api.requestTimeoutSeconds` of its first byte: 408
///   (a client that trickles bytes is cut off);
/// - idle keep-alive connections close after `api.idleTimeoutSeconds` (Hummingbird's idle timeout);
/// - bytes that are not HTTP: 400 `MalformedRequest` (Hummingbird alone answers these with an
///   empty 400).
/// The connection is closed after each of these refusals.
struct GuardedHTTP1Channel: ServerChildChannel {
    /// One connection: Hummingbird's HTTP/1 channel and who is at its other end.
    struct Value: ServerChildChannelValue {
        let http: HTTP1Channel.Value
        /// `nil` on TCP (`aws.listen`).
        let peer: ConnectionPeer?
        var channel: any Channel { http.channel }
    }

    let http1: HTTP1Channel
    let connections: ConnectionCount
    /// The routes answered in the pipeline (the Unix socket's); `nil`: all go to the router.
    let hotRoutes: HotRoutes?

    init(responder: @escaping HTTPChannelHandler.Responder, limits: APIConfiguration, connections: ConnectionCount, hotRoutes: HotRoutes? = nil) {
        self.hotRoutes = hotRoutes
        var configuration = HTTP1Channel.Configuration(
            idleTimeout: .nanoseconds(Int64(limits.idleTimeout.timeInterval * 1_000_000_000)),
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes, maxHeaderFieldCount: limits.maxHeaderCount
            )
        )
        let requestTimeout = TimeAmount.nanoseconds(Int64(limits.requestTimeout.timeInterval * 1_000_000_000))
        configuration.additionalChannelHandlers = { [RequestWatcher(requestTimeout: requestTimeout)] }
        self.http1 = HTTP1Channel(responder: responder, configuration: configuration)
        self.connections = connections
        self.limits = (limits.maxConnections, limits.peerMaxConnections)
        self.allowsAnonymousRemotePeers = limits.allowsAnonymousRemotePeers
    }

    let limits: (total: Int, perPeer: Int)
    let allowsAnonymousRemotePeers: Bool

    /// A connection refused before its first request: closed at once.
    struct Refused: Error {}

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // Who is connecting, for the limits here and the access checks of every request on it.
        ConnectionPeer.identify(channel, allowAnonymousRemote: allowsAnonymousRemotePeers).flatMapThrowing { identification -> ConnectionPeer? in
            let peer: ConnectionPeer?
            switch identification {
            case .peer(let named): peer = named
            case .anonymous: peer = nil
            case .refused(let reason):
                logger.warning("Connection refused: its peer cannot be named", metadata: [
                    "reason": "\(reason)", "peer.address": "\(channel.remoteAddress?.description ?? "unknown")",
                ])
                channel.close(promise: nil)
                throw Refused()
            }
            let uid = peer?.credentials.uid
            switch connections.admit(uid, limits: limits) {
            case .admitted:
                channel.closeFuture.whenComplete { [connections] _ in connections.closed(uid) }
                return peer
            case .refused(let which, let logNow, let since):
                if logNow {
                    logger.warning(which == .peer
                        ? "Connection refused: the peer has access.peerMaxConnections connections open"
                        : "Connection refused: api.maxConnections connections are open", metadata: [
                        "peer.uid": "\(uid.map(String.init) ?? "anonymous")",
                        "peer.pid": "\(peer.map { String($0.credentials.pid) } ?? "unknown")",
                        "connections.refused_since_last_line": "\(since)",
                    ])
                }
                channel.close(promise: nil)
                throw Refused()
            }
        }.flatMap { peer in
            http1.setup(channel: channel, logger: logger).map { Value(http: $0, peer: peer) }
        }.flatMapThrowing { value in
            // In front of the HTTP decoder: the request timer starts at a request's first byte.
            let watcher = try channel.pipeline.syncOperations.handler(type: RequestWatcher.self)
            try channel.pipeline.syncOperations.addHandler(RequestStartDetector(watcher: watcher), position: .first)
            if let hotRoutes {
                // Behind the connection state handler (idle timeout, graceful shutdown), which
                // then sees the hot routes' requests and answers as the router's.
                let state = try channel.pipeline.syncOperations.handler(type: HTTPConnectionStateHandler.self)
                try channel.pipeline.syncOperations.addHandler(HotRouteHandler(routes: hotRoutes, peer: value.peer, logger: logger), position: .after(state))
            }
            return value
        }
    }

    /// Serves the connection's requests, one after another in this task; each request's context
    /// finds the connection's peer in the task (``ConnectionPeer/current``).
    func handle(value: Value, logger: Logger) async {
        await ConnectionPeer.$current.withValue(value.peer) {
            await http1.handle(value: value.http, logger: logger)
        }
    }
}

/// Connections open on one listener, in all and by peer (a uid; `nil`: anonymous TCP clients).
final class ConnectionCount: Sendable {
    enum Limit: Sendable { case listener, peer }
    enum Admission: Equatable, Sendable {
        case admitted
        /// `logNow`: the first refusal of this peer for ``logInterval``; `since`: refusals not
        /// logged before it.
        case refused(Limit, logNow: Bool, since: Int)
    }

    /// A peer refused over and over is logged once in this long.
    static let logInterval: Duration = .seconds(10)

    private struct State {
        var total = 0
        var byPeer: [UInt32?: Int] = [:]
        var lastLogged: [UInt32?: (at: ContinuousClock.Instant, suppressed: Int)] = [:]
    }

    private let state = Mutex(State())
    private let clock = ContinuousClock()

    var current: Int { state.withLock { $0.total } }
    func current(of uid: UInt32?) -> Int { state.withLock { $0.byPeer[uid] ?? 0 } }

    /// Counts the connection in when both limits have room; otherwise counts nothing.
    func admit(_ uid: UInt32?, limits: (total: Int, perPeer: Int)) -> Admission {
        let now = clock.now
        return state.withLock { state in
            let limit: Limit
            if state.total >= limits.total {
                limit = .listener
            } else if state.byPeer[uid, default: 0] >= limits.perPeer {
                limit = .peer
            } else {
                state.total += 1
                state.byPeer[uid, default: 0] += 1
                return .admitted
            }
            if let last = state.lastLogged[uid], now - last.at < Self.logInterval {
                state.lastLogged[uid]?.suppressed += 1
                return .refused(limit, logNow: false, since: 0)
            }
            let suppressed = state.lastLogged[uid]?.suppressed ?? 0
            state.lastLogged[uid] = (now, 0)
            if state.lastLogged.count > 10_000 { state.lastLogged = [uid: (now, 0)] }
            return .refused(limit, logNow: true, since: suppressed)
        }
    }

    func closed(_ uid: UInt32?) {
        state.withLock { state in
            state.total -= 1
            if let count = state.byPeer[uid], count > 1 { state.byPeer[uid] = count - 1 } else { state.byPeer[uid] = nil }
        }
    }
}

/// In front of the HTTP decoder: tells the watcher that bytes arrived, so that a request's timer
/// starts at its first byte, not when its header block is complete.
final class RequestStartDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let watcher: RequestWatcher

    init(watcher: RequestWatcher) {
        self.watcher = watcher
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        watcher.bytesArrived()
        context.fireChannelRead(data)
    }
}

/// Sits after the HTTP decoder: times each request from its first byte to its end, and answers
/// parse errors and oversized headers with JSON.
///
/// One timer a connection, not one a request: a request's start is noted (a clock read), and the
/// timer, armed at the first request's deadline, looks at the request timed when it fires and is
/// armed again at that request's deadline (``nextCheck(requestStarted:timeout:now:)``). Scheduling
/// and cancelling a task for each request cost about 14,000 instructions a request in the event
/// loop's timer heap (BENCHMARKS.md, "Issue 31, eighth round").
final class RequestWatcher: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let requestTimeout: TimeAmount
    /// The armed check; it stays armed after its request's end, for the next one's.
    private var timer: Scheduled<Void>?
    /// When the request being timed began (its first byte); `nil` between requests.
    private var requestStarted: NIODeadline?
    /// Requests whose answer has not been written completely.
    private var unanswered = 0
    /// After a refusal: everything else the client sends is dropped.
    private var refused = false
    /// Between a request's head and its end.
    private var inRequest = false
    private var context: ChannelHandlerContext?

    init(requestTimeout: TimeAmount) {
        self.requestTimeout = requestTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        let part = unwrapInboundIn(data)
        switch part {
        case .head:
            unanswered += 1
            inRequest = true
            startTimer()
        case .body:
            break
        case .end:
            inRequest = false
            requestStarted = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(0, unanswered - 1)
        }
        context.write(data, promise: promise)
    }

    /// Bytes arrived: if no request is being timed, one starts now.
    func bytesArrived() {
        startTimer()
    }

    private func startTimer() {
        guard requestStarted == nil, !refused, let context else { return }
        let started = NIODeadline.now()
        requestStarted = started
        if timer == nil { arm(at: started + requestTimeout, context: context) }
    }

    private func arm(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (watcher, context) = loopBound.value
            watcher.timerFired(context: context)
        }
    }

    /// What the timer does when it fires at `now`.
    enum Check: Equatable {
        /// No request is being timed: the timer waits for the next one's start.
        case disarm
        /// The request being timed is within its time: look again at its deadline.
        case armAgain(NIODeadline)
        case timedOut
    }

    static func nextCheck(requestStarted: NIODeadline?, timeout: TimeAmount, now: NIODeadline) -> Check {
        guard let requestStarted else { return .disarm }
        let deadline = requestStarted + timeout
        return now < deadline ? .armAgain(deadline) : .timedOut
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard !refused else { return }
        switch Self.nextCheck(requestStarted: requestStarted, timeout: requestTimeout, now: .now()) {
        case .disarm:
            break
        case .armAgain(let deadline):
            arm(at: deadline, context: context)
        case .timedOut:
            requestTimedOut(context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if refused { return }
        guard let parseError = error as? HTTPParserError, unanswered == 0 else {
            // An answer is being written: Hummingbird's own handling closes the connection after it.
            context.fireErrorCaught(error)
            return
        }
        if parseError == .headerOverflow {
            refuse(context: context, status: .requestHeaderFieldsTooLarge, code: APIErrorCode.headersTooLarge,
                   message: "the request's headers exceed api.maxHeaderBytes or api.maxHeaderCount")
        } else {
            refuse(context: context, status: .badRequest, code: APIErrorCode.malformedRequest,
                   message: "the request is not valid HTTP/1.1 (\(parseError))")
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    private func requestTimedOut(context: ChannelHandlerContext) {
        timer = nil
        guard !refused else { return }
        // A 408 only where it answers this request: not after an early answer (413, 415) to it, and
        // not while an earlier request's answer is still to be written. Otherwise only close.
        let answersThisRequest = inRequest ? unanswered == 1 : unanswered == 0
        if !answersThisRequest {
            refused = true
            context.close(promise: nil)
            return
        }
        refuse(context: context, status: .requestTimeout, code: APIErrorCode.requestTimeout,
               message: "the request did not arrive complete within api.requestTimeoutSeconds")
    }

    /// Writes one JSON error and closes the connection.
    private func refuse(context: ChannelHandlerContext, status: HTTPResponse.Status, code: String, message: String) {
        refused = true
        timer?.cancel()
        timer = nil
        let body = (try? DaemonAPI.jsonLine(ErrorBody(code: code, message: message))) ?? Data()
        let head = HTTPResponse(status: status, headerFields: [
            .contentType: "application/json",
            .contentLength: "\(body.count)",
            .connection: "close",
            .amznErrorType: code,
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }
}

extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1 server with the API's connection limits, for every listener.
    /// - Parameter hotRoutes: the routes answered in the channel pipeline (``HotRoutes``).
    public static func guardedHTTP1(_ limits: APIConfiguration, hotRoutes: HotRoutes? = nil) -> HTTPServerBuilder {
        let connections = ConnectionCount()
        return HTTPServerBuilder { responder in
            GuardedHTTP1Channel(responder: responder, limits: limits, connections: connections, hotRoutes: hotRoutes)
        }
    }
}
