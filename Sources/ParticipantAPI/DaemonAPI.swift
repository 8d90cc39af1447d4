import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import ParticipantInput
import ParticipantOutbox
import ParticipantWire

/// The daemon's HTTP API, the routes every listener serves from: its own routes on the Unix
/// socket, SendEvent as the service answers it (also on `aws.listen`), and `GET /metrics`.
///
/// | route | answers |
/// |---|---|
/// | `POST /v1/events` | 202 new, 200 same ClientToken again, 409 mismatch, 400/413/415 bad input |
/// | `POST /v1/messages` | a message (SendMessage), answered as `POST /v1/events` |
/// | `POST /v1/disconnect` | the chat's disconnect (DisconnectParticipant), answered as `POST /v1/events` |
/// | `POST /v1/events/batch` | 200 with one result per event, each what `POST /v1/events` answers |
/// | `GET /v1/events/{clientToken}` | 200 the record of any kind, 404 `EventNotFound` |
/// | `GET /v1/health` | 200 with queue counts by state |
/// | `POST /participant/event` | SendEvent, answered as the service does (see `SendEventAPI.swift`) |
/// | `POST /instances/{instance}/participant/event` | the same, for a named instance |
/// | `GET /v1/events`, `/v1/queue/...`, ... | the queue commands (see `QueueAPI.swift`) |
public struct DaemonAPI: Sendable {
    /// Every listener's `Server` header.
    public static let serverName = "participantd"

    let outbox: Outbox
    let configuration: APIConfiguration
    /// Told of each new event, and asked for the senders' state.
    let delivery: any DeliveryControl
    /// What keeps the daemon from being healthy now.
    let healthCheck: HealthCheck

    /// Who may use the socket, and change the queue.
    let access: ResolvedAccess
    /// The queue commands.
    let queue: QueueAPI
    /// `GET /metrics`; `nil`: no metrics.
    let metrics: APIMetrics?
    /// Request bodies held at once (`api.maxBodyMemoryMegabytes`).
    let bodies: BodyBudget

    public init(
        outbox: Outbox, configuration: APIConfiguration, delivery: any DeliveryControl, health: HealthCheck,
        access: ResolvedAccess, metrics: APIMetrics?
    ) {
        self.metrics = metrics
        self.outbox = outbox
        self.configuration = configuration
        self.delivery = delivery
        self.healthCheck = health
        self.access = access
        self.queue = QueueAPI(outbox: outbox, delivery: delivery, access: access)
        self.bodies = BodyBudget(bytes: configuration.maxBodyMemoryMegabytes * 1_048_576)
    }

    /// Every route, for the Unix socket.
    public func router() -> Router<DaemonRequestContext> {
        RouteTable(socketRoutes).router(access: access)
    }

    /// The socket's routes: what `openapi/participantd.openapi.json` describes (OpenAPITests).
    var socketRoutes: [RouteTable.Route] {
        [
            .init(.post, "/v1/events") { request, context in try await submit(request, context: context) },
            .init(.post, "/v1/messages") { request, context in try await submitMessage(request, context: context) },
            .init(.post, "/v1/disconnect") { request, context in try await submitDisconnect(request, context: context) },
            .init(.post, "/v1/events/batch") { request, context in try await submitBatch(request, context: context) },
            .init(.get, "/v1/events/{clientToken}") { request, context in try await event(request, context: context) },
            .init(.get, "/v1/health") { _, _ in try await health() },
            .init(.get, "/v1/openapi.json") { _, _ in Self.response(Array((OpenAPIDocument.json + "\n").utf8), status: .ok) },
        ] + sendEventRoutes + queue.readRoutes + queue.changeRoutes + metricsRoutes
    }

    /// `GET /metrics` alone, for the loopback TCP listener (`metrics.listen`).
    public func metricsRouter() -> Router<DaemonRequestContext> {
        RouteTable(metricsRoutes).router()
    }

    var metricsRoutes: [RouteTable.Route] {
        guard metrics != nil else { return [] }
        return [.init(.get, "/metrics") { _, _ in try await renderMetrics() }]
    }

    /// The Prometheus text format (version 0.0.4), gauges read now.
    func renderMetrics() async throws -> Response {
        guard let metrics else { throw APIError(.notFound, code: "NotFound", message: "metrics are off") }
        let (counts, waitingByInstance) = try await outbox.gaugeCounts()
        let oldest = try await outbox.oldestWaiting()
        let byPeer = try await outbox.peerCounts(sentWithin: nil)
        let size = try await outbox.databaseSize()
        let text = metrics.render(MetricsSnapshot(
            counts: counts, oldestWaitingAge: oldest?.age, senders: delivery.senderStates(),
            waitingByInstance: waitingByInstance,
            waitingByPeer: Dictionary(byPeer.map { (PeerName.of($0.key), $0.value.waiting) }, uniquingKeysWith: +),
            fleetShared: await delivery.fleetStats()?.shared,
            databaseBytes: size.used, databaseLimitBytes: size.limit, storageFull: outbox.storageProblem != nil
        ))
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    /// The SDK routes only, for the loopback TCP listener (`aws.listen`): the daemon's own routes
    /// stay behind the socket's file permissions. Each connection's peer is the user that owns
    /// the client's socket, checked against `access.allowUsers` / `access.allowGroups` as on the socket.
    public func serviceRouter() -> Router<DaemonRequestContext> {
        RouteTable(sendEventRoutes).router(access: access)
    }

    // MARK: Handlers

    func submit(_ request: Request, context: DaemonRequestContext) async throws -> Response {
        try await submitItem(.event, request, context: context)
    }

    /// `POST /v1/messages`: a message, stored and answered as `POST /v1/events` stores and answers an event.
    func submitMessage(_ request: Request, context: DaemonRequestContext) async throws -> Response {
        try await submitItem(.message, request, context: context)
    }

    /// `POST /v1/disconnect`: the chat's disconnect, sent once everything acknowledged before it on
    /// the chat has ended; answered as `POST /v1/events` answers an event.
    func submitDisconnect(_ request: Request, context: DaemonRequestContext) async throws -> Response {
        try await submitItem(.disconnect, request, context: context)
    }

    /// The socket API's routes that store one item: `POST /v1/events`, `/v1/messages`, `/v1/disconnect`.
    enum ItemRoute: Sendable {
        case event, message, disconnect
    }

    /// One item of the socket API's: its body read and decoded, its instance checked, then stored
    /// and answered.
    private func submitItem(_ route: ItemRoute, _ request: Request, context: DaemonRequestContext) async throws -> Response {
        let item = try await decodedBody(request, maxBodyBytes: configuration.maxBodyBytes) { body throws(APIError) in
            try decodeItem(route, body: body)
        }
        let stored = try await store(item, peer: context.peerID, logger: context.logger)
        let (status, bytes) = Self.submitted(stored, item)
        return Self.response(bytes, status: status)
    }

    /// The item a body of `route` holds, its instance checked: what both the router and the hot
    /// routes (``HotRouteHandler``) store.
    func decodeItem(_ route: ItemRoute, body: Data) throws(APIError) -> ValidatedItem {
        let item: ValidatedItem
        do throws(RequestError) {
            item = switch route {
            case .event: .event(try RequestDecoding.daemonRequest(body: body))
            case .message: .message(try RequestDecoding.messageRequest(body: body))
            case .disconnect: .disconnect(try RequestDecoding.disconnectRequest(body: body))
            }
        } catch {
            throw APIError(error)
        }
        do {
            try configuration.checkInstance(item.instance)
        } catch {
            throw APIError(.invalid(error))
        }
        return item
    }

    /// A stored item's answer: 202 new, 200 the same ClientToken again.
    static func submitted(_ stored: Stored, _ item: ValidatedItem) -> (HTTPResponse.Status, [UInt8]) {
        switch stored {
        case .created(let stored):
            (.accepted, AnswerWriter.jsonLine(SubmitResponse(event: stored.record, created: true, warnings: item.warnings)))
        case .duplicate(let stored):
            (.ok, AnswerWriter.jsonLine(SubmitResponse(event: stored.record, created: false, warnings: item.warnings)))
        }
    }

    /// `POST /v1/events/batch`: every event stored in one group commit, each answered as
    /// `POST /v1/events` would have answered it (`200 {"results": [{"status", "body"}, ...]}`, in
    /// order); a bad event fails alone. Only a batch that is not one (not an object with an array
    /// `events` of 1 to `api.maxBatchEvents` elements, larger than `api.maxBatchBytes`) or an
    /// outbox that cannot store anything fails the request as a whole.
    func submitBatch(_ request: Request, context: DaemonRequestContext) async throws -> Response {
        let decoded = try await decodedBody(request, maxBodyBytes: configuration.maxBatchBytes, limitName: "api.maxBatchBytes") { body throws(APIError) in
            try decodeBatch(body)
        }
        let valid = decoded.compactMap { try? $0.get() }
        let committed = valid.isEmpty ? .success([]) : await committed(valid.map(ValidatedItem.event), peer: context.peerID)
        return Self.response(try batchAnswer(decoded, committed: committed, logger: context.logger).get(), status: .ok)
    }

    /// A batch's events, each decoded and its instance checked alone; only a body that is no
    /// batch at all fails as a whole.
    func decodeBatch(_ body: Data) throws(APIError) -> [Result<ValidatedEvent, RequestError>] {
        let configuration = configuration
        do throws(RequestError) {
            return try RequestDecoding.batchRequest(body: body, maxEvents: configuration.maxBatchEvents).enumerated().map { index, result in
                result.flatMap { event -> Result<ValidatedEvent, RequestError> in
                    do throws(ValidationError) {
                        try configuration.checkInstance(event.instance, field: "events[\(index)].instance")
                        return .success(event)
                    } catch {
                        return .failure(.invalid(error))
                    }
                }
            }
        } catch {
            throw APIError(error)
        }
    }

    /// A batch's answer (`{"results": [...]}`) once its valid events' transaction has committed
    /// (`committed`: one outcome for each valid event, in order); a transaction that failed as a
    /// whole fails the request.
    func batchAnswer(
        _ decoded: [Result<ValidatedEvent, RequestError>], committed: Result<[Result<SubmitOutcome, OutboxError>], any Error>, logger: Logger
    ) -> Result<[UInt8], APIError> {
        let outcomes: [Result<SubmitOutcome, OutboxError>]
        switch committed {
        case .success(let all): outcomes = all
        case .failure(let error):
            guard let first = decoded.lazy.compactMap({ try? $0.get() }).first else { return .success(AnswerWriter.jsonLine(BatchSubmitResponse(results: []))) }
            return .failure(Self.storageError(error, item: .event(first), logger: logger))
        }
        var stored = outcomes.makeIterator()
        let results = decoded.map { decodedEvent -> BatchResult in
            let event: ValidatedEvent
            switch decodedEvent {
            case .failure(let error):
                return BatchResult(APIError(error))
            case .success(let valid):
                event = valid
            }
            do throws(APIError) {
                switch stored.next()! {
                case .success(let outcome):
                    switch try answer(outcome, for: .event(event), logger: logger) {
                    case .created(let stored):
                        return BatchResult(status: 202, body: .event(SubmitResponse(event: stored.record, created: true, warnings: event.warnings)))
                    case .duplicate(let stored):
                        return BatchResult(status: 200, body: .event(SubmitResponse(event: stored.record, created: false, warnings: event.warnings)))
                    }
                case .failure(let error):
                    throw Self.storageError(error, item: .event(event), logger: logger)
                }
            } catch {
                return BatchResult(error)
            }
        }
        return .success(AnswerWriter.jsonLine(BatchSubmitResponse(results: results)))
    }

    func event(_ request: Request, context: DaemonRequestContext) async throws -> Response {
        // The router hands the segment over still percent-encoded; a token may hold `/`, spaces, anything.
        let segment = try context.parameters.require("clientToken")
        let clientToken = segment.removingPercentEncoding ?? segment
        let scope = try access.scope(of: request, context)
        let stored = try await queue.run { try await outbox.event(clientToken: clientToken, in: scope) }
        guard let stored else { throw QueueAPI.notFound(QueueCommandError.notFound(clientToken: clientToken)) }
        return try Self.json(stored.record, status: .ok)
    }

    func health() async throws -> Response {
        let counts = try await outbox.countsByState()
        let problems = try await healthCheck.problems()
        let report = HealthReport(
            status: problems.isEmpty ? "ok" : "degraded", ready: true, problems: problems,
            queue: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            version: DaemonVersion.current
        )
        return try Self.json(report, status: .ok)
    }

    // MARK: Storing

    /// A stored submission: new, or the same ClientToken with the same parameters again.
    enum Stored {
        case created(StoredEvent)
        case duplicate(StoredEvent)
    }

    /// Stores a valid item in the outbox, or says why not in the socket API's terms.
    func store(_ item: ValidatedItem, peer: Int64, logger: Logger) async throws(APIError) -> Stored {
        try stored(await committed([item], peer: peer), item: item, logger: logger).get()
    }

    /// The outbox's transaction for `items`, its failure as a value, as the hot routes' completion
    /// gets it (``Outbox/submit(_:peer:completion:)``).
    private func committed(_ items: [ValidatedItem], peer: Int64) async -> Result<[Result<SubmitOutcome, OutboxError>], any Error> {
        do {
            return .success(try await outbox.submit(items, peer: peer))
        } catch {
            return .failure(error)
        }
    }

    /// What the outbox's transaction did with one item (``Outbox/submit(_:peer:completion:)``):
    /// logged, counted, the sender told, in the socket API's terms. Run where the answer is
    /// written, not on the outbox writer's thread, which commits the next transaction meanwhile.
    func stored(_ committed: Result<[Result<SubmitOutcome, OutboxError>], any Error>, item: ValidatedItem, logger: Logger) -> Result<Stored, APIError> {
        let outcome: SubmitOutcome
        do {
            outcome = try committed.get()[0].get()
        } catch {
            return .failure(Self.storageError(error, item: item, logger: logger))
        }
        do throws(APIError) {
            return .success(try answer(outcome, for: item, logger: logger))
        } catch {
            return .failure(error)
        }
    }

    /// An outbox's refusal to store an item, as the socket API says it.
    static func storageError(_ error: any Error, item: ValidatedItem, logger: Logger) -> APIError {
        let kind = item.kind.rawValue
        do {
            throw error
        } catch OutboxError.full(let capacity) {
            var error = APIError(.serviceUnavailable, code: APIErrorCode.outboxFull, message: "the outbox holds \(capacity) waiting items, its capacity; nothing stored was dropped; submit again later")
            error.headers = [.retryAfter: "5"]
            return error
        } catch OutboxError.peerFull(let share, let capacity) {
            var error = APIError(
                .serviceUnavailable, code: APIErrorCode.peerOutboxFull,
                message: "your programs (this user) have \(capacity) waiting items, \(Int((share * 100).rounded()))% of the outbox (access.peerMaxWaitingShare); nothing stored was dropped; submit again later"
            )
            error.headers = [.retryAfter: "5"]
            return error
        } catch OutboxError.storageFull(let reason) {
            logger.error("Item not stored: storage full", metadata: ["error": "\(reason)", "item.kind": "\(kind)", "event.content_type": "\(item.contentType.shortName)"])
            var error = APIError(.init(code: 507, reasonPhrase: "Insufficient Storage"), code: APIErrorCode.storageFull, message: "the outbox's storage is full (\(reason)); the \(kind) was not stored; submit again later")
            error.headers = [.retryAfter: "30"]
            return error
        } catch OutboxError.closed {
            return APIError(.serviceUnavailable, code: APIErrorCode.unavailable, message: "participantd is shutting down; submit again shortly")
        } catch OutboxError.failed(let reason) {
            var error = APIError(.serviceUnavailable, code: APIErrorCode.unavailable,
                                 message: "the outbox's storage failed (\(reason)); the \(kind) was not acknowledged; participantd restarts: submit again with the same clientToken")
            error.headers = [.retryAfter: "5"]
            return error
        } catch {
            logger.error("Item not stored", metadata: ["error": "\(error)", "item.kind": "\(kind)", "event.content_type": "\(item.contentType.shortName)"])
            return APIError(.internalServerError, code: APIErrorCode.storage, message: "the \(kind) was not stored: \(error)")
        }
    }

    /// What a stored submission's outcome means for its client: logged, counted, and the sender
    /// woken for a new item; a refusal as the socket API says it.
    func answer(_ outcome: SubmitOutcome, for item: ValidatedItem, logger: Logger) throws(APIError) -> Stored {
        let kind = item.kind.rawValue
        switch outcome {
        case .created(let stored):
            metrics?.accepted(item.contentType)
            // One line per item, at debug (swift-log's advice for a line per success; the
            // summary line, log.summarySeconds, counts them at info). Its metadata is built only
            // when the line is written: the accept path is the daemon's hottest.
            // The kind is in each line's message ("Message accepted"), not a key of its own.
            // The chat (its connection's hash) and the instance too, so that the journal finds
            // a chat's items (journalctl CONNECTION_HASH=...).
            let logsEachItem = logger.logLevel <= .debug
            let deprecated = item.contentType.eventType?.isDeprecated == true
            var metadata: Logger.Metadata = [:]
            if logsEachItem || deprecated {
                metadata = [
                    "event.client_token": "\(stored.clientToken)",
                    "event.content_type": "\(item.contentType.shortName)",
                    "connection.hash": "\(stored.connectionHash)",
                    "instance": "\(stored.instance)",
                ]
                if item.clientToken == nil { metadata["event.client_token_generated"] = "true" }
            }
            if let supersededBy = stored.supersededBy {
                // Nothing to send: the sender need not wake.
                if logsEachItem {
                    metadata["event.superseded_by"] = "\(supersededBy)"
                    logger.debug("Event accepted as superseded: an earlier event already says it", metadata: metadata)
                }
            } else {
                if logsEachItem {
                    switch item.kind {
                    case .event: logger.debug("Event accepted", metadata: metadata)
                    case .message: logger.debug("Message accepted", metadata: metadata)
                    case .disconnect: logger.debug("Disconnect accepted; the chat's queued typing and receipts are superseded", metadata: metadata)
                    }
                }
                if deprecated {
                    logger.warning("Deprecated content type accepted", metadata: metadata)
                }
                delivery.accepted(instance: item.instance, kind: item.kind)
            }
            return .created(stored)
        case .duplicate(let stored):
            logger.debug("Duplicate submission answered from the outbox", metadata: ["event.client_token": "\(stored.clientToken)"])
            return .duplicate(stored)
        case .blocked(let block):
            let since = WireCoding.formatTimestamp(block.blockedAt)
            switch block.scope {
            case .all:
                throw APIError(.gone, code: APIErrorCode.connectionRejected,
                               message: "the service refused this connection token at \(since) (\(block.error.code): \(block.error.message)); the chat has ended or the token expired, so nothing for it can succeed")
            case .receipts:
                throw APIError(.conflict, code: APIErrorCode.receiptsRefused,
                               message: "the service refused receipts for this connection at \(since) (\(block.error.code): \(block.error.message)); typing events and messages are still sent")
            case .disconnected:
                // Another user's disconnect (its items are not shown), or one deleted from under
                // the block: the chat is closed all the same until the block ends.
                throw APIError(.conflict, code: APIErrorCode.chatDisconnected,
                               message: "the participant of this chat was disconnected at \(since); the chat takes nothing more")
            }
        case .chatDisconnected(let disconnect):
            throw APIError(
                .conflict, code: APIErrorCode.chatDisconnected,
                message: "the participant of this chat was disconnected (clientToken \(disconnect.clientToken), accepted at \(WireCoding.formatTimestamp(disconnect.acceptedAt)), now \(disconnect.state.rawValue)); the chat takes nothing more"
            )
        case .mismatch(let stored):
            var differing: [String] = []
            if stored.contentType.kind != item.kind {
                differing.append("kind (\(stored.contentType.kind.withArticle), not \(item.kind.withArticle))")
            } else if stored.contentType != item.contentType {
                differing.append("contentType")
            }
            if !stored.hasContent(item.content) { differing.append("content") }
            if stored.instance != item.instance {
                differing.append("instance (\(stored.instance))")
            } else if stored.connectionHash != ConnectionHash.of(item.credential, instance: item.instance) {
                differing.append(stored.viaParticipant ? "participantToken" : "connectionToken")
            }
            throw APIError(
                .conflict, code: APIErrorCode.idempotentParameterMismatch,
                message: "clientToken \(stored.clientToken) was already used for \(stored.contentType.kind.withArticle) with a different \(differing.joined(separator: ", ")); use a new clientToken for a new \(kind)"
            )
        }
    }

    // MARK: Decoding and encoding

    /// The body of a POST, after its Content-Type is checked: at most `api.maxBodyBytes`.
    /// The body read and decoded while its size is reserved in the body budget (``BodyBudget``):
    /// its `Content-Length`, else `maxBodyBytes`. The decoded value is what outlives it.
    func decodedBody<T>(
        _ request: Request, maxBodyBytes: Int, limitName: String = "api.maxBodyBytes", _ decode: (Data) throws(APIError) -> T
    ) async throws -> T {
        let declared = request.headers[.contentLength].flatMap(Int.init).map { min(max(0, $0), maxBodyBytes) }
        return try await bodies.reserving(declared ?? maxBodyBytes) {
            let body = try await Self.readBody(request, maxBodyBytes: maxBodyBytes, limitName: limitName)
            return try decode(body)
        }
    }

    func readBody(_ request: Request) async throws(APIError) -> Data {
        try await Self.readBody(request, maxBodyBytes: configuration.maxBodyBytes)
    }

    package static func readBody(_ request: Request, maxBodyBytes: Int, limitName: String = "api.maxBodyBytes") async throws(APIError) -> Data {
        do {
            try RequestDecoding.checkMediaType(request.headers[.contentType])
        } catch {
            throw APIError(error)
        }
        do {
            return Data(buffer: try await request.body.collect(upTo: maxBodyBytes))
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, code: APIErrorCode.payloadTooLarge, message: "the request body is larger than \(maxBodyBytes) bytes (\(limitName))")
        } catch {
            throw APIError(.badRequest, code: APIErrorCode.malformedRequest, message: "the request body could not be read: \(error)")
        }
    }

    /// The answer to an accepted event, written by ``AnswerWriter`` (a quarter of the request
    /// path's instructions were JSONEncoder's); the same bytes.
    package static func json(_ value: SubmitResponse, status: HTTPResponse.Status) throws -> Response {
        response(AnswerWriter.jsonLine(value), status: status)
    }

    package static func json(_ value: BatchSubmitResponse, status: HTTPResponse.Status) throws -> Response {
        response(AnswerWriter.jsonLine(value), status: status)
    }

    static func response(_ bytes: [UInt8], status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    package static func json(_ value: some Encodable, status: HTTPResponse.Status) throws -> Response {
        let data = try jsonLine(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// Every answer's body: the wire JSON and a newline.
    static func jsonLine(_ value: some Encodable) throws -> Data {
        var data = try WireCoding.encoder().encode(value)
        data.append(0x0A)
        return data
    }
}
