import Foundation
import Hummingbird
import Logging
import ParticipantInput
import ParticipantOutbox
import ParticipantWire

/// The queue commands' routes (`participantctl list/show/retry/hold/release/delete/flush/stats`):
///
/// | route | answers |
/// |---|---|
/// | `GET /v1/events?state=S&connectionHash=H&instance=I&limit=N&cursor=C` | 200 ``EventList`` (`nextCursor` when the page is full) |
/// | `POST /v1/events/{clientToken}/retry` (`hold`, `release`) | 200 ``QueueChange``; 404, 409 `InvalidState`, `AmbiguousClientToken` |
/// | (retry's optional body: `{"connectionToken": T}`, the token to send it with) | 400 for a bad token |
/// | `DELETE /v1/events/{clientToken}` | 200 ``QueueChange``; 404, 409 `InvalidState`, `AmbiguousClientToken` |
/// | `POST /v1/queue/retry-failed` | 200 ``QueueChange`` |
/// | `POST /v1/queue/flush` | 200 ``QueueChange`` |
/// | `GET /v1/queue/stats` | 200 ``QueueStats`` |
/// | `GET /v1/backup` | 200 a consistent copy of the outbox (an SQLite file); 403 for all but administrators |
///
/// Each sees the peer's own items only (another's item is not found), unless the peer is an
/// administrator (root, participantd's user, `access.adminGroups`): then everyone's, or one
/// user's with `owner=UID` in the query.
///
/// What the sender is doing now, for stats and metrics.
public struct SenderState: Sendable {
    public var inFlight: Int
    /// Whether the sender takes the service as down now (sending suspended, the service probed).
    public var outage: Bool
    public var quotaRate: Double
    public var quotaTokens: Double
    public var problems: [String]

    public init(inFlight: Int = 0, quotaRate: Double = 0, quotaTokens: Double = 0, problems: [String] = [], outage: Bool = false) {
        self.inFlight = inFlight
        self.outage = outage
        self.quotaRate = quotaRate
        self.quotaTokens = quotaTokens
        self.problems = problems
    }
}

/// Every change is logged at notice with the peer's user id, so the journal says who did what.
struct QueueAPI: Sendable {
    let outbox: Outbox
    /// Told when waiting events became due (`participantctl flush`); asked for stats.
    let delivery: any DeliveryControl
    /// Whose items each peer sees.
    let access: ResolvedAccess

    /// Events in one page of `GET /v1/events` at most: the answer is built in memory, so its size
    /// is bounded (1,000 records of at most about 16 KiB); more come page by page (`cursor`).
    static let maxListLimit = 1_000

    /// A retry's body holds one connection token (at most 1,000 characters) at most.
    static let maxRetryBodyBytes = 8 * 1024

    var readRoutes: [RouteTable.Route] {
        [
            .init(.get, "/v1/events") { request, context in try await list(request, context) },
            .init(.get, "/v1/queue/stats") { request, context in try await stats(request, context) },
            .init(.get, "/v1/backup") { _, context in try await backup(context) },
        ]
    }

    /// The routes that change the queue.
    var changeRoutes: [RouteTable.Route] {
        [
            .init(.post, "/v1/events/{clientToken}/retry") { request, context in
                // No body, or the connection token to send the item with (its own was erased when it ended).
                let connectionToken: String?
                do {
                    connectionToken = try RequestDecoding.retryRequest(body: try await DaemonAPI.readBody(request, maxBodyBytes: Self.maxRetryBodyBytes))
                } catch let error as RequestError {
                    throw APIError(error)
                }
                return try await change(.retried, request, context) { try await outbox.retry(clientToken: $0, connectionToken: connectionToken, in: $1) }
            },
            .init(.post, "/v1/events/{clientToken}/hold") { request, context in
                try await change(.held, request, context) { try await outbox.hold(clientToken: $0, in: $1) }
            },
            .init(.post, "/v1/events/{clientToken}/release") { request, context in
                try await change(.released, request, context) { try await outbox.release(clientToken: $0, in: $1) }
            },
            .init(.delete, "/v1/events/{clientToken}") { request, context in
                try await change(.deleted, request, context) { try await outbox.delete(clientToken: $0, in: $1) }
            },
            .init(.post, "/v1/queue/retry-failed") { request, context in
                let scope = try access.scope(of: request, context)
                let count = try await run { try await outbox.retryAllFailed(in: scope) }
                context.logger.notice("Queue command: failed events queued again", metadata: ["queue.changed": "\(count)"].merging(PeerCredentials.metadata(context)) { $1 })
                if QueueAction.retried.makesEventsDue { delivery.flush() }
                return try DaemonAPI.json(QueueChange(action: .retried, changed: count, event: nil), status: .ok)
            },
            .init(.post, "/v1/queue/flush") { request, context in
                let scope = try access.scope(of: request, context)
                let count = try await run { try await outbox.flush(in: scope) }
                if QueueAction.flushed.makesEventsDue { delivery.flush() }
                context.logger.notice("Queue command: waiting events made due now", metadata: ["queue.changed": "\(count)"].merging(PeerCredentials.metadata(context)) { $1 })
                return try DaemonAPI.json(QueueChange(action: .flushed, changed: count, event: nil), status: .ok)
            },
        ]
    }

    func list(_ request: Request, _ context: DaemonRequestContext) async throws -> Response {
        let scope = try access.scope(of: request, context)
        let query = request.uri.queryParameters
        var state: EventState?
        if let raw = query["state"].map(String.init), !raw.isEmpty {
            guard let parsed = EventState(rawValue: raw) else {
                throw APIError(.badRequest, code: APIErrorCode.validation,
                               message: "state must be one of \(EventState.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(raw)\"")
            }
            state = parsed
        }
        var hash: String?
        if let raw = query["connectionHash"].map(String.init), !raw.isEmpty {
            guard (4...16).contains(raw.count), raw.allSatisfy(\.isHexDigit) else {
                throw APIError(.badRequest, code: APIErrorCode.validation,
                               message: "connectionHash must be 4 to 16 hexadecimal digits (the start of a connection hash), got \"\(raw)\"")
            }
            hash = raw
        }
        var instance: String?
        if let raw = query["instance"].map(String.init), !raw.isEmpty {
            if let problem = InstanceName.problem(raw) {
                throw APIError(.badRequest, code: APIErrorCode.validation, message: "instance \(problem)")
            }
            instance = raw
        }
        var limit = 100
        if let raw = query["limit"].map(String.init), !raw.isEmpty {
            guard let value = Int(raw), (1...Self.maxListLimit).contains(value) else {
                throw APIError(.badRequest, code: APIErrorCode.validation, message: "limit must be a whole number from 1 to \(Self.maxListLimit), got \"\(raw)\"")
            }
            limit = value
        }
        var cursor: Int64?
        if let raw = query["cursor"].map(String.init), !raw.isEmpty {
            guard let value = Int64(raw), value >= 0 else {
                throw APIError(.badRequest, code: APIErrorCode.validation, message: "cursor must be the nextCursor of an earlier page (a whole number), got \"\(raw)\"")
            }
            cursor = value
        }
        let events = try await outbox.list(state: state, connectionHashPrefix: hash, instance: instance, in: scope, after: cursor, limit: limit)
        return try DaemonAPI.json(EventList(events: events.map(\.record), nextCursor: events.count == limit ? events.last?.seq : nil), status: .ok)
    }

    /// The scope's counts (a peer's own, or everyone's); the senders' and the fleet's state, and
    /// the requests coalescing saved, are the daemon's, the same for every peer.
    func stats(_ request: Request, _ context: DaemonRequestContext) async throws -> Response {
        let scope = try access.scope(of: request, context)
        let byInstance = try await outbox.countsByInstance(in: scope)
        let counts = Outbox.totals(byInstance)
        let oldest = try await outbox.oldestWaiting(in: scope)
        let sent = try await outbox.sentCount(within: .seconds(60), in: scope)
        let senders = delivery.senderStates()
        var instances: [String: InstanceStats] = [:]
        for (name, sender) in senders {
            let counts = byInstance[name] ?? Outbox.zeroCounts
            instances[name] = InstanceStats(
                counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
                sentLastMinute: try await outbox.sentCount(within: .seconds(60), instance: name, in: scope),
                requestsInFlight: sender.inFlight, quotaRate: sender.quotaRate, problems: sender.problems
            )
        }
        let stats = QueueStats(
            counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            oldestWaitingAcceptedAt: oldest?.acceptedAt,
            oldestWaitingAgeSeconds: oldest?.age,
            sentLastMinute: sent, sendRatePerSecond: Double(sent) / 60,
            requestsInFlight: senders.values.reduce(0) { $0 + $1.inFlight },
            quotaRate: senders.values.reduce(0) { $0 + $1.quotaRate },
            instances: instances, fleet: await delivery.fleetStats(),
            savedRequests: Dictionary(uniqueKeysWithValues: outbox.savedRequests.byRule.map { ($0.key.rawValue, $0.value) }),
            countsByKind: Dictionary(uniqueKeysWithValues: try await outbox.countsByKind(in: scope).map { kind, counts in
                (kind.rawValue, Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }))
            }),
            peers: Dictionary(try await outbox.peerCounts(sentWithin: .seconds(60)).filter { scope.peer == nil || $0.key == scope.peer }.map { peer, counts in
                (PeerName.of(peer), PeerStats(uid: peer == Outbox.unknownPeer ? nil : peer, waiting: counts.waiting, sentLastMinute: counts.sent))
            }) { first, second in
                PeerStats(uid: first.uid, waiting: first.waiting + second.waiting, sentLastMinute: first.sentLastMinute + second.sentLastMinute)
            }
        )
        return try DaemonAPI.json(stats, status: .ok)
    }

    /// `participantctl backup`: the outbox copied (``Outbox/backup()``) and streamed, the copy
    /// deleted once sent. Administrators only: it holds every user's items and their connection
    /// tokens.
    func backup(_ context: DaemonRequestContext) async throws -> Response {
        guard access.seesEveryone(context.connectionPeer) else {
            context.logger.warning("Backup refused: the peer is not an administrator", metadata: PeerCredentials.metadata(context))
            throw APIError(.forbidden, code: APIErrorCode.accessDenied,
                           message: "a backup holds every user's items and their connection tokens: only root, participantd's user and the groups in access.adminGroups may make one")
        }
        let path = try await run { try await outbox.backup() }
        let file: ResponseBody
        do {
            file = try await FileIO().loadFile(path: path, context: context)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        var metadata = PeerCredentials.metadata(context)
        metadata["outbox.backup_bytes"] = "\(file.contentLength ?? 0)"
        context.logger.notice("Backup of the outbox made", metadata: metadata)
        // Deleted once streamed, or when the stream fails; a copy never streamed (the client gone
        // before) is deleted at the next start.
        let body = ResponseBody(contentLength: file.contentLength) { writer in
            defer { try? FileManager.default.removeItem(atPath: path) }
            let streamed = file
            try await streamed.write(writer)
        }
        return Response(status: .ok, headers: [.contentType: "application/vnd.sqlite3"], body: body)
    }

    private func change(
        _ action: QueueAction, _ request: Request, _ context: DaemonRequestContext,
        _ operation: @Sendable (String, ItemScope) async throws -> StoredEvent
    ) async throws -> Response {
        let scope = try access.scope(of: request, context)
        let segment = try context.parameters.require("clientToken")
        let clientToken = segment.removingPercentEncoding ?? segment
        let event = try await run { try await operation(clientToken, scope) }
        var metadata = PeerCredentials.metadata(context)
        metadata["event.client_token"] = "\(clientToken)"
        metadata["event.owner"] = "\(PeerName.of(event.peer))"
        metadata["event.state"] = "\(event.state.rawValue)"
        context.logger.notice("Queue command: event \(action.rawValue)", metadata: metadata)
        if action.makesEventsDue { delivery.flush() }
        return try DaemonAPI.json(QueueChange(action: action, changed: 1, event: event.record), status: .ok)
    }

    /// The outbox's refusals in the API's terms.
    func run<T>(_ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let error as QueueCommandError {
            switch error {
            case .notFound:
                throw Self.notFound(error)
            case .wrongState, .tokenErased:
                throw APIError(.conflict, code: APIErrorCode.invalidState, message: error.description)
            case .ambiguous:
                throw APIError(.conflict, code: APIErrorCode.ambiguousClientToken, message: error.description)
            }
        } catch OutboxError.full(let capacity) {
            throw APIError(.serviceUnavailable, code: APIErrorCode.outboxFull, message: "the outbox holds \(capacity) waiting events, its capacity; nothing was changed")
        } catch OutboxError.closed {
            throw APIError(.serviceUnavailable, code: APIErrorCode.unavailable, message: "participantd is shutting down")
        } catch OutboxError.failed(let reason) {
            throw APIError(.serviceUnavailable, code: APIErrorCode.unavailable, message: "the outbox's storage failed (\(reason)); nothing was changed; participantd restarts")
        }
    }

    static func notFound(_ error: QueueCommandError) -> APIError {
        APIError(.notFound, code: APIErrorCode.eventNotFound, message: error.description)
    }
}
