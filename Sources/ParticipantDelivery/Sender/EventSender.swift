import Foundation
import Logging
import ParticipantOutbox
import ParticipantWire
import ServiceLifecycle
import Synchronization

/// The sender worker: leases due events from the outbox, calls SendEvent, and records each
/// outcome (sent, retry scheduled, failed, expired).
///
/// At most `maxInFlight` requests are in flight; each connection token has at most one, so a
/// connection's events arrive in the order they were accepted while a slow or failing connection
/// holds up nobody else. An event is leased only when the ``QuotaPacer`` has a token for it, so
/// when the quota is the bottleneck the outbox's priority order (read receipts first) decides
/// what goes next, and a backlog of typing indicators never delays a receipt. Between rounds it sleeps until the next event is due, or until
/// ``wake()`` says a new event was accepted.
///
/// On graceful shutdown it leases nothing more and waits up to `shutdownTimeout` for the requests
/// in flight to end and their outcomes to be recorded; requests still running then are cancelled,
/// and their events go back to `queued` (sent again after the restart, with the same ClientToken).
public final class EventSender: Service, Sendable {
    public struct Configuration: Sendable, Equatable {
        public var maxInFlight: Int = 16
        public var retry = RetryPolicy()
        /// SendEvent's quota, which SendMessage shares (unless `separateMessageQuota`).
        public var quota = QuotaPacer.Configuration()
        /// DisconnectParticipant's quota: 3 requests per second, burst 5, per instance.
        public var disconnectQuota = QuotaPacer.Configuration(rate: 3, burst: 5)
        /// SendMessage in a bucket of its own, of `quota`'s size (the service's quota page lists the
        /// two operations together without saying whether they share one).
        public var separateMessageQuota = false
        /// CreateParticipantConnection's quota: 6 requests per second, burst 9, per instance.
        public var connectionQuota = QuotaPacer.Configuration(rate: 6, burst: 9)
        /// `ConnectParticipant` for the connections the daemon creates, unless a submission says.
        public var connectParticipant = true
        /// The longest the sender sleeps without looking at the outbox, whatever it expects.
        public var idleCheckInterval: Duration = .seconds(5)

        public init() {}
    }

    private let outbox: Outbox
    private let service: any ParticipantService
    private let configuration: Configuration
    /// Monotonic time: pacing, outages, the heartbeat, and every sleep.
    private let stopwatch: Stopwatch
    /// The time of day the records carry.
    private let wall: WallClock
    private let random: @Sendable () -> Double
    private let shutdownTimeout: Duration
    private let logger: Logger
    private let doorbell = Doorbell()
    /// SendEvent's bucket (and SendMessage's, unless `separateMessageQuota`): the pacing that
    /// health, stats and reloads speak of.
    private let pacer: any QuotaGate
    /// Each of the service's quotas this sender spends, the main one first.
    private let lanes: [QuotaLane]
    /// CreateParticipantConnection's bucket.
    private let connectionPacer: any QuotaGate
    /// Whether an item of a quota other than the main one may be queued: set when one is accepted,
    /// at a flush or a generic wake, and at the start; cleared when the outbox has none queued.
    /// Spares every round the other quotas' look-up (a read) while none waits.
    private let otherQuotasMayWait = Atomic<Bool>(true)
    /// CreateParticipantConnection's failures in a row (not refusals), for health.
    private let connectionFailures = Mutex<(count: Int, since: Date?, last: String)>((0, nil, ""))
    /// The Connect instance whose events this sender delivers (its configured name).
    public let instance: String
    /// Outcomes the outbox could not store (disk full), to be recorded again.
    private let unrecorded = Mutex<[(DeliveryTransition, StoredEvent)]>([])
    private let outages = OutageDetector()
    private let inFlight = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// When the loop last went round: milliseconds of the stopwatch.
    private let heartbeat = Atomic<Int64>(0)
    /// Failures, expiries and retries past the first few of a kind in a minute are summarised.
    private let repeats: RepeatSummary
    private let metrics: DeliveryMetrics?

    public init(
        outbox: Outbox,
        service: any ParticipantService,
        configuration: Configuration,
        stopwatch: Stopwatch = .continuous,
        wall: WallClock = .system,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        shutdownTimeout: Duration = .seconds(10),
        repeats: RepeatSummary = RepeatSummary(),
        metrics: DeliveryMetrics? = nil,
        instance: String,
        pacer: (any QuotaGate)? = nil,
        messagePacer: (any QuotaGate)? = nil,
        disconnectPacer: (any QuotaGate)? = nil,
        connectionPacer: (any QuotaGate)? = nil,
        logger: Logger
    ) {
        self.connectionPacer = connectionPacer ?? QuotaPacer(configuration: configuration.connectionQuota, now: stopwatch.elapsed)
        self.instance = instance
        self.repeats = repeats
        self.metrics = metrics
        self.shutdownTimeout = shutdownTimeout
        self.outbox = outbox
        self.service = service
        self.configuration = configuration
        self.stopwatch = stopwatch
        self.wall = wall
        self.random = random
        var logger = logger
        logger[metadataKey: "instance"] = "\(instance)"
        self.logger = logger
        let pacer = pacer ?? QuotaPacer(configuration: configuration.quota, now: stopwatch.elapsed)
        self.pacer = pacer
        let disconnects = QuotaLane(
            operation: "DisconnectParticipant", priorities: ItemKind.disconnect.priorities,
            pacer: disconnectPacer ?? QuotaPacer(configuration: configuration.disconnectQuota, now: stopwatch.elapsed)
        )
        self.lanes = configuration.separateMessageQuota
            ? [
                QuotaLane(operation: "SendEvent", priorities: ItemKind.event.priorities, pacer: pacer),
                QuotaLane(operation: "SendMessage", priorities: ItemKind.message.priorities,
                          pacer: messagePacer ?? QuotaPacer(configuration: configuration.quota, now: stopwatch.elapsed)),
                disconnects,
            ]
            : [
                QuotaLane(operation: "SendEvent and SendMessage", priorities: ItemKind.message.priorities.lowerBound...ItemKind.event.priorities.upperBound, pacer: pacer),
                disconnects,
            ]
        beat()
    }

    private var now: Duration { stopwatch.elapsed }

    private func beat() {
        heartbeat.store(Int64(now / .milliseconds(1)), ordering: .relaxed)
    }

    /// Whether the service is taken as down now (no answer to the last attempts): sending is
    /// suspended and the service probed. For the metric `participantd_upstream_outage`.
    public var isInOutage: Bool { outages.outage != nil }

    /// What keeps delivery from being healthy now, for `GET /v1/health`; empty when all is well.
    public var healthProblems: [String] {
        var problems = pacer.problem.map { [$0] } ?? []
        let failures = connectionFailures.withLock { $0 }
        if failures.count >= ConnectionRenewal.failuresForHealth, let since = failures.since {
            problems.append("CreateParticipantConnection has failed \(failures.count) times in a row since \(WireCoding.formatTimestamp(since)) (last: \(failures.last)); chats named by a participant token wait")
        }
        guard let outage = outages.outage else { return problems }
        problems.append("the service has not answered since \(WireCoding.formatTimestamp(outage.since)) (\(outage.failures) attempts in a row; last: \(outage.lastError)); sending is suspended and the service is probed")
        return problems
    }

    /// Whether the sender's loop went round within `2 × idleCheckInterval + 1 s`: it goes round
    /// at least every `idleCheckInterval`, so a longer silence means it is stuck.
    public var isAlive: Bool {
        let age = now - .milliseconds(heartbeat.load(ordering: .relaxed))
        return age <= configuration.idleCheckInterval * 2 + .seconds(1)
    }

    /// New pacing settings (a reload): SendEvent's quota (and SendMessage's, shared or not).
    public func reconfigure(quota: QuotaPacer.Configuration) {
        for lane in lanes where !lane.carries(.disconnect) {
            lane.pacer.reconfigure(quota, now: now)
        }
        doorbell.ring()
    }

    /// `participantctl flush`: during an outage the next probe goes now (the outbox made the
    /// queued events due); the quota still paces what follows.
    public func flush() {
        otherQuotasMayWait.store(true, ordering: .relaxed)
        outages.probeNow()
        doorbell.ring()
    }

    /// Whole quota tokens available now (pacing off: `maxInFlight`).
    public var quotaTokens: Double { pacer.configuration.isEnabled ? pacer.tokens(now: now) : Double(configuration.maxInFlight) }

    /// Requests to the service in flight now.
    public var requestsInFlight: Int { inFlight.load(ordering: .relaxed) }

    /// The pacing rate now (below the configured one after throttling); 0: pacing off.
    public var quotaRate: Double { pacer.configuration.isEnabled ? pacer.currentRate : 0 }

    /// Tells the sender there may be something to send now. Not while the loop is asleep and no
    /// request could start: when the quota is spent (the loop sleeps until its next token at the
    /// latest: tokens only leave the bucket in a round, and a round that leaves none sleeps until
    /// the next), or during an outage before the next probe may go (the loop sleeps until the
    /// probe's time at the latest, and a probe's end rings). A round then would only ask the
    /// outbox what it cannot send, twice for each event accepted (BENCHMARKS.md, "Instructions").
    /// During a round the ring always goes: the round holds its tokens until it has leased, and
    /// may miss the new event.
    /// - Parameter kind: the new item's kind: only its quota's bucket matters (`nil`: any).
    public func wake(for kind: ItemKind? = nil) {
        if kind.map({ !lanes[0].carries($0) }) ?? true {
            otherQuotasMayWait.store(true, ordering: .relaxed)
        }
        if !inRound.load(ordering: .relaxed) {
            let pacers = kind.map { kind in lanes.filter { $0.carries(kind) } } ?? lanes
            let suspended = outages.allowedAttempts(1, inFlight: inFlight.load(ordering: .relaxed), now: now) == 0
            if suspended || pacers.allSatisfy({ $0.pacer.isWaitingForToken(now: now) }) {
                metrics?.wakeSkipped()
                return
            }
        }
        doorbell.ring()
    }

    /// From a round's start until its sleep is decided.
    private let inRound = Atomic<Bool>(false)

    public func run() async throws {
        await resumeQuotas()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                // Graceful shutdown sets `stopping`; cancellation (a forced stop) ends the loop as well.
                while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
                    beat()
                    metrics?.round()
                    repeats.flush(logger)
                    do {
                        inRound.store(true, ordering: .relaxed)
                        let leasedAll = try await sendRound(in: &group)
                        if leasedAll { continue }
                        let sleep = try await sleepTime()
                        inRound.store(false, ordering: .relaxed)
                        await doorbell.wait(timeout: sleep, on: stopwatch.clock)
                    } catch {
                        inRound.store(false, ordering: .relaxed)
                        logger.error("Sender round failed; trying again shortly", metadata: ["error": "\(error)"])
                        await doorbell.wait(timeout: .seconds(1), on: stopwatch.clock)
                    }
                }
                await finishInFlight(group: &group)
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
            self.doorbell.ring()
        }
        repeats.flush(logger, all: true)
        logger.debug("Sender stopped")
    }

    /// Before the first round: each bucket keeps no more than the service's has refilled since
    /// the last request on its quota that the outbox kept (a previous run's, just before a crash
    /// or a restart). When the outbox does not answer, the buckets start empty: the safe side.
    private func resumeQuotas() async {
        let today = wall.now()
        func resume(_ pacer: any QuotaGate, operation: String, after lastRequest: () async throws -> Date?) async {
            var secondsAgo = 0.0
            do {
                guard let last = try await lastRequest() else { return }
                secondsAgo = today.timeIntervalSince(last)
            } catch {
                logger.warning("The last requests' times could not be read; the quota starts empty", metadata: [
                    "quota.operation": "\(operation)", "error": "\(error)",
                ])
            }
            pacer.resume(lastRequestSecondsAgo: secondsAgo, now: now)
            logger.debug("Quota resumed", metadata: [
                "quota.operation": "\(operation)", "quota.last_request_s_ago": "\(secondsAgo)", "quota.tokens": "\(pacer.tokens(now: now))",
            ])
        }
        for lane in lanes {
            await resume(lane.pacer, operation: lane.operation) {
                try await outbox.lastRequestStart(instance: instance, priorities: lane.priorities)
            }
        }
        await resume(connectionPacer, operation: "CreateParticipantConnection") {
            try await outbox.lastConnectionCreated(instance: instance)
        }
    }

    /// Waits up to `shutdownTimeout` for the requests in flight, then cancels the rest: their
    /// attempts end as retries, so their events are `queued` again, not left `sending`.
    private func finishInFlight(group: inout DiscardingTaskGroup) async {
        guard inFlight.load(ordering: .relaxed) > 0 else { return }
        logger.info("Sender stopping; waiting for requests in flight", metadata: [
            "sender.in_flight": "\(inFlight.load(ordering: .relaxed))",
            "shutdown.timeout_s": "\(shutdownTimeout.timeInterval)",
        ])
        let end = now + shutdownTimeout
        while inFlight.load(ordering: .relaxed) > 0 && now < end && !Task.isCancelled {
            await doorbell.wait(timeout: end - now, on: stopwatch.clock)
        }
        if inFlight.load(ordering: .relaxed) > 0 {
            logger.warning("Requests still in flight at the shutdown timeout were cut off; their events stay queued",
                           metadata: ["sender.in_flight": "\(inFlight.load(ordering: .relaxed))"])
            group.cancelAll()
        }
    }

    /// Expires what is overdue and leases as many due events as there is room for.
    /// - Returns: whether the lease filled all the room (there may be more due right now).
    private func sendRound(in group: inout DiscardingTaskGroup) async throws -> Bool {
        try await recordUnrecorded()
        let expired = try await expireOverdueNow()
        metrics?.expired(expired.count)
        for event in expired {
            repeats.log(logger, .warning, "Event expired", key: "expired", metadata: eventMetadata(event).merging([
                "event.deadline": "\(WireCoding.formatTimestamp(event.deadline))",
            ]) { $1 })
        }
        let inFlightNow = inFlight.load(ordering: .relaxed)
        // During an outage only one probe at a time goes out.
        var room = outages.allowedAttempts(configuration.maxInFlight - inFlightNow, inFlight: inFlightNow, now: now)
        var filled = false
        // The other quotas' items are rare: while one may be queued, a look-up in the due index (a
        // read) before each lease, which would scan the waiting connections inside a write.
        let othersMayWait = otherQuotasMayWait.exchange(false, ordering: .relaxed)
        var othersQueued = false
        for (index, lane) in lanes.enumerated() where room > 0 {
            if index > 0 {
                guard othersMayWait else { break }
                let queued = try await outbox.queuedItems(instance: instance, priorities: lane.priorities)
                othersQueued = othersQueued || queued.any
                if !queued.due { continue }
            }
            let tokens = lane.pacer.take(upTo: room, now: now)
            guard tokens > 0 else { continue }
            let leased: [StoredEvent]
            do {
                leased = try await outbox.leaseDue(instance: instance, limit: tokens, priorities: lane.priorities)
            } catch {
                lane.pacer.giveBack(tokens)
                throw error
            }
            lane.pacer.giveBack(tokens - leased.count)
            room -= leased.count
            if !leased.isEmpty {
                outages.probeStarted(now: now)
            }
            for event in leased {
                inFlight.add(1, ordering: .relaxed)
                group.addTask {
                    await self.deliver(event, quota: lane.pacer)
                    self.inFlight.subtract(1, ordering: .relaxed)
                    self.doorbell.ring()
                }
            }
            if !leased.isEmpty && leased.count == tokens { filled = true }
        }
        if othersQueued { otherQuotasMayWait.store(true, ordering: .relaxed) }
        return filled
    }

    /// Ends overdue events, when there are any: a round comes after every answer, and an expiry
    /// write in each would double the commits the sender waits for. The question is a read, which
    /// never waits for the writer.
    private func expireOverdueNow() async throws -> [StoredEvent] {
        try await outbox.hasOverdue(instance: instance) ? try await outbox.expireOverdue(instance: instance) : []
    }

    /// Until the next retry or deadline the outbox knows of, at most `idleCheckInterval`.
    /// Events that are due but wait behind an older event of their connection need no timer:
    /// the end of that older event's delivery rings the doorbell.
    private func sleepTime() async throws -> Duration {
        let today = wall.now()
        var sleep = configuration.idleCheckInterval
        if let next = try await outbox.nextWakeUp(after: today, instance: instance) {
            sleep = min(sleep, .milliseconds(next.millisecondsSince1970 - today.millisecondsSince1970))
        }
        if let untilProbe = outages.untilProbe(now: now), untilProbe > .zero {
            sleep = min(sleep, untilProbe)
        }
        // Out of quota tokens: look again when the next one is there. (The main quota's: another
        // quota's item waits at most until the next round, which each answer starts.)
        let untilToken = pacer.untilNextToken(now: now)
        if untilToken > .zero {
            sleep = min(sleep, untilToken)
        }
        return max(.milliseconds(1), sleep)
    }

    /// One attempt at one leased event, and its outcome recorded; `pacer` is the quota it spent.
    func deliver(_ event: StoredEvent, quota pacer: any QuotaGate) async {
        var metadata = eventMetadata(event)
        let connectionToken: String
        /// Created for this attempt: a 403 with it is the service's last word.
        var freshConnection = false
        if event.viaParticipant {
            switch await participantConnection(for: event, metadata: &metadata) {
            case .token(let token, let fresh):
                (connectionToken, freshConnection) = (token, fresh)
            case .done(let transition):
                switch transition {
                case .failed(let error, let block?):
                    metrics?.failed(code: error.code)
                    metadata["error.code"] = "\(error.code)"
                    metadata["error.message"] = "\(error.message)"
                    await recordBlock(transition, block: block, error: error, for: event, metadata: metadata,
                                      "The participant's chat is over; its waiting items failed and new ones are refused")
                    return
                case .failed(let error, nil):
                    metrics?.failed(code: error.code)
                    metadata["error.code"] = "\(error.code)"
                    logger.error("Item failed before its request", metadata: metadata)
                case .retry(let at, let error):
                    metrics?.retried(code: error.code)
                    metadata["error.code"] = "\(error.code)"
                    metadata["error.message"] = "\(error.message)"
                    metadata["retry.delay_ms"] = "\(max(0, Int(at.timeIntervalSince(wall.now()) * 1000)))"
                    repeats.log(logger, .info, "No connection for the participant yet; retry scheduled", key: "connection \(error.code)", metadata: metadata)
                case .expired:
                    metrics?.expired()
                    repeats.log(logger, .warning, "Event expired", key: "expired connection", metadata: metadata)
                case .sent:
                    break
                }
                await record(transition, for: event, metadata: metadata)
                return
            }
            if event.contentType == .event(.connectionAcknowledged) {
                // Its delivery is the connection created with ConnectParticipant: true (the
                // event itself is deprecated): done.
                metrics?.sent(peer: event.peer)
                logger.debug("Event sent as ConnectParticipant: true on the participant's connection", metadata: metadata)
                await record(.sent(id: "", absoluteTime: ""), for: event, metadata: metadata)
                return
            }
        } else if let token = event.connectionToken {
            connectionToken = token
        } else {
            // Only final rows lose their token; a leased row without one is a broken invariant.
            await record(.failed(ErrorBody(code: "InternalError", message: "the stored event has no connection token")), for: event, metadata: metadata)
            return
        }
        // The lease checked the deadline when it ran; its wait for the writer and the disk may
        // have been long on a busy machine. A deadline passed since: expired, not sent late.
        if wall.now() >= event.deadline {
            metrics?.expired()
            repeats.log(logger, .warning, "Event expired", key: "expired", metadata: metadata)
            let error = ErrorBody(code: "DeadlineExceeded", message: "the deadline passed before the request could start")
            await record(.expired(error), for: event, metadata: metadata)
            return
        }
        let requestStarted = now
        let result = await service.send(
            ServiceRequest(operation: ServiceOperation(for: event.contentType.kind), contentType: event.contentType.rawValue, content: event.content, clientToken: event.clientToken, connectionToken: connectionToken)
        )
        metrics?.upstreamRequest(took: now - requestStarted)
        if event.viaParticipant, !freshConnection, case .rejected(let error, 403) = result {
            // The kept connection was refused (it died early, or the chat ended): a new one for
            // the next attempt, once; a 403 with a connection made for the attempt is final.
            try? await outbox.dropConnection(for: event)
            metadata["error.code"] = "\(error.code)"
            logger.info("The participant's connection token was refused; a new connection is created for the next attempt", metadata: metadata)
            await record(.retry(at: wall.now(), error: error), for: event, metadata: metadata)
            return
        }
        let decision = AttemptDecision.decide(
            attempts: event.attempts, deadline: event.deadline, contentType: event.contentType,
            result: result, now: wall.now(), random: random(), retry: configuration.retry
        )
        observe(decision.meaning, pacer: pacer)
        switch decision.meaning {
        case .sent(let id, _, let processingStatus):
            metrics?.sent(peer: event.peer)
            metadata["event.id"] = "\(id)"
            if let processingStatus { metadata["message.processing_status"] = "\(processingStatus)" }
            switch event.contentType.kind {
            // At debug, one line per item (the summary line counts them at info).
            case .event: logger.debug("Event sent", metadata: metadata)
            case .message: logger.debug("Message sent", metadata: metadata)
            case .disconnect: logger.debug("Disconnect sent", metadata: metadata)
            }
        case .fail(let error, let status, let block):
            metrics?.failed(code: error.code)
            metadata["error.code"] = "\(error.code)"
            metadata["error.message"] = "\(error.message)"
            metadata["http.status"] = "\(status)"
            // A ValidationException means the daemon or its client sent something wrong.
            repeats.log(logger, status == 400 ? .error : .warning, "Event failed", key: "failed \(error.code)", metadata: metadata)
            if let block {
                await recordBlock(decision.transition, block: block, error: error, for: event, metadata: metadata,
                                  "Connection refused by the service; its waiting events failed and new ones are refused")
                return
            }
        case .retry(let error, let throttled):
            if throttled { metadata["quota.rate"] = "\(pacer.currentRate)" }
            metadata["error.code"] = "\(error.code)"
            metadata["error.message"] = "\(error.message)"
            if case .retry = decision.transition {
                metrics?.retried(code: error.code)
                metadata["retry.delay_ms"] = "\(Int(((decision.retryDelay ?? .zero).timeInterval * 1000).rounded()))"
                // A TLS or proxy failure is the same for every attempt until it is mended: the
                // outage's one warning names it, and each event's lastError; not a line per attempt.
                let level: Logger.Level = ["TLSError", "ProxyError"].contains(error.code) ? .debug : .info
                repeats.log(logger, level, "Retry scheduled", key: "retry \(error.code)", metadata: metadata)
            } else {
                metrics?.expired()
                repeats.log(logger, .warning, "Event expired", key: "expired \(error.code)", metadata: metadata)
            }
        }
        await record(decision.transition, for: event, metadata: metadata)
    }

    /// What an answer says about the service: pacing follows 429s and successes, an outage begins
    /// after attempts in a row without an answer and ends at the first answer.
    private func observe(_ meaning: ServiceAnswer.Meaning, pacer: any QuotaGate) {
        switch meaning {
        case .sent: pacer.recordSuccess()
        case .retry(_, throttled: true): pacer.recordThrottle()
        case .retry(let error, throttled: false):
            if let outage = outages.recordNoAnswer("\(error.code): \(error.message)", at: wall.now(), now: now) {
                logger.warning("The service does not answer; sending suspended, probing at growing intervals", metadata: [
                    "outage.failures": "\(outage.failures)", "error.code": "\(error.code)", "error.message": "\(error.message)",
                ])
            }
        case .fail: break
        }
        if meaning.serviceAnswered { serviceAnswered() }
    }

    private func serviceAnswered() {
        if let outage = outages.recordAnswer() {
            logger.notice("The service answers again; sending resumed", metadata: [
                "outage.since": "\(WireCoding.formatTimestamp(outage.since))", "outage.failures": "\(outage.failures)",
            ])
        }
    }

    @discardableResult
    private func record(_ transition: DeliveryTransition, for event: StoredEvent, metadata: Logger.Metadata) async -> Int? {
        do {
            return try await outbox.record(transition, for: event)
        } catch OutboxError.closed {
            // Stopping: the row stays `sending`; the next start queues it again and the service dedupes it.
            logger.warning("Outcome of an attempt not recorded: the outbox is closed; the event is sent again after the restart", metadata: metadata)
            return nil
        } catch {
            // Storage full or failing: keep the outcome and record it when the outbox can write,
            // so the event (and its connection, which waits behind it) does not stay `sending`.
            var metadata = metadata
            metadata["error"] = "\(error)"
            logger.error("Could not record the outcome of an attempt; it is recorded again when the outbox can write", metadata: metadata)
            unrecorded.withLock { $0.append((transition, event)) }
            return nil
        }
    }

    /// Records a failure that refuses the connection (`block`): the connection's other waiting
    /// items fail with it, and one line tells it for the whole connection, not one per item.
    private func recordBlock(
        _ transition: DeliveryTransition, block: ConnectionBlock.Scope, error: ErrorBody, for event: StoredEvent,
        metadata: Logger.Metadata, _ message: Logger.Message
    ) async {
        var metadata = metadata
        let othersFailed = await record(transition, for: event, metadata: metadata) ?? 0
        if othersFailed > 0 { metrics?.failed(code: error.code, count: othersFailed) }
        metadata["connection.hash"] = "\(event.connectionHash.prefix(12))"
        metadata["connection.blocked"] = "\(block.rawValue)"
        metadata["connection.events_failed"] = "\(othersFailed)"
        logger.warning(message, metadata: metadata)
    }

    /// Records the outcomes a failing outbox refused before; throws while it still refuses them.
    private func recordUnrecorded() async throws {
        let outcomes = unrecorded.withLock { outcomes in
            defer { outcomes.removeAll() }
            return outcomes
        }
        for (index, (transition, event)) in outcomes.enumerated() {
            do {
                try await outbox.record(transition, for: event)
            } catch {
                unrecorded.withLock { $0.insert(contentsOf: outcomes[index...], at: 0) }
                throw error
            }
        }
        if !outcomes.isEmpty {
            logger.notice("Outcomes of earlier attempts recorded", metadata: ["sender.outcomes": "\(outcomes.count)"])
        }
    }

    /// How an attempt of a chat named by a participant token gets its connection token.
    enum ConnectionStep {
        /// Send with this token (`fresh`: created for this attempt).
        case token(String, fresh: Bool)
        /// No request to send: the attempt ends so.
        case done(DeliveryTransition)
    }

    /// The chat's connection token: the kept one while it is good (``ConnectionRenewal``), else a
    /// new one from CreateParticipantConnection, paced by that operation's own bucket. At most one
    /// creation per participant is in flight: a chat has one attempt in flight at a time.
    func participantConnection(for event: StoredEvent, metadata: inout Logger.Metadata) async -> ConnectionStep {
        let connection: ParticipantConnection
        do {
            guard let found = try await outbox.participantConnection(for: event) else {
                return .done(.failed(ErrorBody(code: "InternalError", message: "the participant connection of this item is not stored")))
            }
            connection = found
        } catch {
            return .done(.retry(at: wall.now().addingTimeInterval(1), error: ErrorBody(code: "StorageError", message: "\(error)")))
        }
        let wantConnected = event.contentType == .event(.connectionAcknowledged) || (connection.connectParticipant ?? configuration.connectParticipant)
        if let token = connection.connectionToken, connection.connected || !wantConnected,
           ConnectionRenewal.isUsable(createdAt: connection.createdAt, expiresAt: connection.expiresAt, now: wall.now()) {
            return .token(token, fresh: false)
        }
        // A token of CreateParticipantConnection's bucket: wait for it (the attempt is leased).
        while connectionPacer.take(upTo: 1, now: now) < 1 {
            do {
                try await stopwatch.clock.sleep(for: max(.milliseconds(1), connectionPacer.untilNextToken(now: now)))
            } catch {
                return .done(.retry(at: wall.now(), error: ErrorBody(code: "Cancelled", message: "stopping before CreateParticipantConnection")))
            }
        }
        metadata["connection.renewal"] = "\(connection.connectionToken == nil ? "first" : "renewal")"
        let result = await service.createConnection(participantToken: connection.participantToken, connectParticipant: wantConnected)
        switch result {
        case .created(let token, let expiry):
            connectionPacer.recordSuccess()
            connectionFailures.withLock { $0 = (0, nil, "") }
            metrics?.connectionCreated()
            do {
                try await outbox.recordConnection(for: event, connectionToken: token, expiresAt: expiry, connected: wantConnected)
            } catch {
                logger.warning("The new connection could not be stored; it is used for this attempt only", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
            logger.info("Participant connection created", metadata: metadata.merging([
                "connection.expiry": "\(WireCoding.formatTimestamp(expiry))", "connection.connect_participant": "\(wantConnected)",
            ]) { $1 })
            return .token(token, fresh: true)
        case .rejected(let error, let status):
            metrics?.connectionFailed(code: error.code)
            let reason = ErrorBody(
                code: error.code,
                message: "CreateParticipantConnection refused the participant token (\(status) \(error.code): \(error.message)); the chat has ended or the participant left"
            )
            return .done(.failed(reason, block: .all))
        case .transient(let error, let status):
            if status == 429 { connectionPacer.recordThrottle() }
            metrics?.connectionFailed(code: error.code)
            connectionFailures.withLock { failures in
                failures = (failures.count + 1, failures.since ?? wall.now(), "\(error.code): \(error.message)")
            }
            let decision = AttemptDecision.decide(
                attempts: event.attempts, deadline: event.deadline, contentType: event.contentType,
                result: .transient(ErrorBody(code: error.code, message: "CreateParticipantConnection: \(error.message)"), status: status),
                now: wall.now(), random: random(), retry: configuration.retry
            )
            return .done(decision.transition)
        }
    }

    private func eventMetadata(_ event: StoredEvent) -> Logger.Metadata {
        [
            "event.client_token": "\(event.clientToken)",
            "event.content_type": "\(event.contentType.shortName)",
            "event.attempt": "\(event.attempts)",
            // The sender's logger carries `instance`.
            "connection.hash": "\(event.connectionHash)",
        ]
    }
}

/// One of the service's quotas as a sender spends it: its bucket, and the outbox priorities of
/// the items that spend it (``ParticipantWire/ItemKind/priorities``).
struct QuotaLane: Sendable {
    /// The operations that spend it, for people.
    let operation: String
    let priorities: ClosedRange<Int>
    let pacer: any QuotaGate

    /// Whether items of `kind` spend this quota.
    func carries(_ kind: ItemKind) -> Bool { priorities.contains(kind.priorities.lowerBound) }
}
