import Foundation
import Logging
import MetricsTestKit
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantInput
import ParticipantWire
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import ParticipantTestSupport

/// A fake Participant Service in the test's process: it answers each request as the test's script
/// says, and keeps every request. `hold` makes a request wait until the test releases it.
final class ScriptedService: ParticipantService {
    typealias Script = @Sendable (_ request: ServiceRequest, _ index: Int) -> ServiceCallResult

    private let state = Mutex<(requests: [ServiceRequest], held: [UInt64: CheckedContinuation<Void, Never>], nextHold: UInt64)>(([], [:], 0))
    private let script = Mutex<Script>({ request, _ in .accepted(id: "id-\(request.clientToken)", absoluteTime: "2026-12-02T00:00:00.000Z") })
    private let holding = Mutex<Bool>(false)

    var requests: [ServiceRequest] { state.withLock { $0.requests } }
    var clientTokens: [String] { requests.map(\.clientToken) }
    var held: Int { state.withLock { $0.held.count } }

    func answer(_ script: @escaping Script) { self.script.withLock { $0 = script } }

    typealias ConnectionScript = @Sendable (_ participantToken: String, _ connectParticipant: Bool, _ index: Int) -> ConnectionCallResult
    /// CreateParticipantConnection's calls: the participant token and ConnectParticipant of each.
    private let connectionCalls = Mutex<[(participantToken: String, connectParticipant: Bool)]>([])
    /// By default a new token each call (`ct-TOKEN-N`), valid until 2100.
    private let connectionScript = Mutex<ConnectionScript>({ token, _, index in
        .created(connectionToken: "ct-\(token)-\(index)", expiry: Date(timeIntervalSince1970: 4_102_444_800))
    })
    var connections: [(participantToken: String, connectParticipant: Bool)] { connectionCalls.withLock { $0 } }
    func answerConnections(_ script: @escaping ConnectionScript) { connectionScript.withLock { $0 = script } }

    func createConnection(participantToken: String, connectParticipant: Bool) async -> ConnectionCallResult {
        let index = connectionCalls.withLock { calls in
            calls.append((participantToken, connectParticipant))
            return calls.count - 1
        }
        return connectionScript.withLock { $0 }(participantToken, connectParticipant, index)
    }

    /// From now on each request waits for ``release()`` (or its task's cancellation).
    func hold(_ on: Bool = true) { holding.withLock { $0 = on } }

    /// Lets every held request answer.
    func release() {
        let held = state.withLock { state in
            defer { state.held = [:] }
            return Array(state.held.values)
        }
        for continuation in held { continuation.resume() }
    }

    func send(_ request: ServiceRequest) async -> ServiceCallResult {
        let index = state.withLock { state in
            state.requests.append(request)
            return state.requests.count - 1
        }
        if holding.withLock({ $0 }) {
            let id = state.withLock { state in
                defer { state.nextHold += 1 }
                return state.nextHold
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let cancelled = state.withLock { state -> Bool in
                        if Task.isCancelled { return true }
                        state.held[id] = continuation
                        return false
                    }
                    if cancelled { continuation.resume() }
                }
            } onCancel: {
                state.withLock { $0.held.removeValue(forKey: id) }?.resume()
            }
            if Task.isCancelled {
                return .transient(ErrorBody(code: "ConnectionError", message: "cancelled"), status: nil)
            }
        }
        return script.withLock { $0 }(request, index)
    }
}

extension ServiceCallResult {
    static let serverError = ServiceCallResult.transient(ErrorBody(code: "InternalServerException", message: "boom"), status: 500)
    static let throttled = ServiceCallResult.transient(ErrorBody(code: "ThrottlingException", message: "slow down"), status: 429)
    static let noAnswer = ServiceCallResult.transient(ErrorBody(code: "ConnectionError", message: "connection refused"), status: nil)
    static func accepted(_ request: ServiceRequest) -> ServiceCallResult {
        .accepted(id: "id-\(request.clientToken)", absoluteTime: "2026-12-02T00:00:00.000Z")
    }
}

/// The sender in the test's process: a real outbox in a temporary folder, the fake service, and a
/// manual clock. No test sleeps for a backoff: time moves when the test moves it, and each step
/// waits for the condition it means (a request made, an event's state, the sender asleep until T).
@Suite struct EventSenderTests {
    let clock = ManualClock()
    let service = ScriptedService()
    let metrics = TestMetrics()

    /// Runs the sender (as a graceful-shutdown test service) over a fresh outbox during `body`.
    func withSender(
        _ configure: (inout EventSender.Configuration) -> Void = { _ in },
        deadlines: EventDeadlines = EventDeadlines(),
        shutdownTimeout: Duration = .seconds(10),
        random: Double = 0.5,
        beforeStart prepare: (Outbox) async throws -> Void = { _ in },
        _ body: (Outbox, EventSender, GracefulShutdownTestTrigger) async throws -> Void,
        afterStop: (Outbox) async throws -> Void = { _ in }
    ) async throws {
        var configuration = EventSender.Configuration()
        configuration.quota.rate = 0
        configure(&configuration)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var coalescing = CoalescingRules.perMessage
        coalescing.typingInterval = .zero
        coalescing.receipts = false
        let outbox = try Outbox.open(
            path: directory.path + "/outbox.sqlite", deadlines: deadlines,
            coalescing: coalescing, clock: clock.wallClock, logger: Logger(label: "test")
        )
        let writer = Task { try await outbox.writer.run() }
        defer { writer.cancel() }
        try await prepare(outbox)
        let sender = EventSender(
            outbox: outbox, service: service, configuration: configuration, stopwatch: clock.stopwatch, wall: clock.wallClock,
            random: { random }, shutdownTimeout: shutdownTimeout,
            metrics: DeliveryMetrics(factory: metrics, instance: InstanceName.defaultName), instance: InstanceName.defaultName, logger: Logger(label: "test")
        )
        try await testGracefulShutdown { trigger in
            let running = Task { try await sender.run() }
            do {
                try await body(outbox, sender, trigger)
            } catch {
                running.cancel()
                throw error
            }
            let timeoutAt = clock.elapsed + shutdownTimeout
            trigger.triggerGracefulShutdown()
            // With requests in flight, the sender's shutdown waits for them on the manual clock,
            // up to its timeout: once it waits, the time moves there.
            try await eventually(timeout: .seconds(10), "the sender stopping (wake-ups \(clock.wakeUps))") {
                sender.requestsInFlight == 0 || clock.wakeUps.contains(timeoutAt)
            }
            clock.advance(by: max(.zero, timeoutAt - clock.elapsed))
            try await running.value
        }
        try await afterStop(outbox)
    }

    @discardableResult
    func submit(_ outbox: Outbox, _ sender: EventSender, token: String, connection: String, type: EventContentType = .messageRead) async throws -> StoredEvent {
        let content = type.isReceipt ? receipt("m-\(token)") : nil
        let event = try EventValidator.validate(EventSubmission(contentType: type.rawValue, content: content, clientToken: token, connectionToken: connection))
        guard case .created(let stored) = try await outbox.submit(event) else { throw TimedOut(description: "\(token) not created") }
        sender.wake()
        return stored
    }

    func state(_ outbox: Outbox, _ token: String) async throws -> EventState? {
        try await outbox.event(clientToken: token)?.state
    }

    /// Waits until the sender sleeps with a wake-up at `elapsed` on the manual clock.
    func asleep(until elapsed: Duration) async throws {
        // A bound, not a wait: the outbox is a file, and its syncs may take seconds while the
        // whole suite (power cuts, fleets) shares the disk.
        try await eventually(timeout: .seconds(30), "the sender asleep until \(elapsed) (wake-ups \(clock.wakeUps), \(service.requests.count) requests)") {
            clock.wakeUps.contains(elapsed)
        }
    }

    @Test("An event leased before its deadline whose request could not start before it (a slow commit or sync) ends expired, not sent late")
    func deadlinePassedAfterTheLease() async throws {
        try await withTestOutbox(clock: clock, storage: .temporaryFile) { outbox in
            // Not running: its one attempt is made by hand below.
            let sender = EventSender(
                outbox: outbox, service: service, configuration: EventSender.Configuration(), stopwatch: clock.stopwatch, wall: clock.wallClock,
                random: { 0.5 }, shutdownTimeout: .seconds(1), metrics: nil, instance: InstanceName.defaultName, logger: Logger(label: "test")
            )
            let stored = try await submit(outbox, sender, token: "late", connection: "c-late", type: .typing)
            let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1)
            #expect(leased.map(\.clientToken) == ["late"])
            clock.advance(by: .milliseconds(stored.deadline.millisecondsSince1970 - clock.wallClock.now().millisecondsSince1970))
            await sender.deliver(leased[0], quota: QuotaPacer(configuration: .init(), now: clock.elapsed))
            #expect(service.requests.isEmpty, "sent after its deadline")
            let after = try #require(try await outbox.event(clientToken: "late"))
            #expect(after.state == .expired)
            #expect(after.lastError?.code == "DeadlineExceeded")
        }
    }

    @Test("A 500 is retried after the drawn backoff (full jitter), not before, with the same ClientToken")
    func backoffAndJitter() async throws {
        service.answer { request, index in index == 0 ? .serverError : .accepted(request) }
        try await withSender({ $0.retry = RetryPolicy(baseDelay: .seconds(2), maxDelay: .seconds(20)) }, random: 0.25) { outbox, sender, _ in
            try await submit(outbox, sender, token: "a", connection: "c1")
            try await eventually(timeout: .seconds(10), "the retry recorded") { try await state(outbox, "a") == .queued && service.requests.count == 1 }
            // 0.25 x min(2 s x 2^0, 20 s) = 0.5 s after the failed attempt.
            let stored = try #require(try await outbox.event(clientToken: "a"))
            #expect(stored.nextAttemptAt == clock.date.addingTimeInterval(0.5).truncatedToMilliseconds)
            #expect(stored.lastError?.code == "InternalServerException")
            try await asleep(until: .milliseconds(500))
            clock.advance(by: .milliseconds(499))
            #expect(service.requests.count == 1)
            clock.advance(by: .milliseconds(1))
            try await eventually(timeout: .seconds(10), "sent on the second attempt") { try await state(outbox, "a") == .sent }
            #expect(service.clientTokens == ["a", "a"])
            #expect(try await outbox.event(clientToken: "a")?.attempts == 2)
        }
    }

    @Test("An event whose next attempt would come after its deadline expires, with the last error")
    func deadlineExpires() async throws {
        service.answer { _, _ in .serverError }
        var deadlines = EventDeadlines()
        deadlines.messageRead = .seconds(3)
        try await withSender(deadlines: deadlines, random: 0.99) { outbox, sender, _ in
            try await submit(outbox, sender, token: "late", connection: "c1")
            // Retries at 0.99, 0.99 + 1.98 = 2.97; the third draw (3.96 s) passes the deadline.
            try await eventually(timeout: .seconds(10), "first retry") {
                let value = try await state(outbox, "late")
                return service.requests.count == 1 && value == .queued
            }
            try await asleep(until: .milliseconds(990))
            clock.advance(by: .milliseconds(990))
            try await eventually(timeout: .seconds(10), "second retry") {
                let value = try await state(outbox, "late")
                return service.requests.count == 2 && value == .queued
            }
            try await asleep(until: .milliseconds(2970))
            clock.advance(by: .milliseconds(1980))
            try await eventually(timeout: .seconds(10), "expired") { try await state(outbox, "late") == .expired }
            let stored = try #require(try await outbox.event(clientToken: "late"))
            #expect(stored.lastError?.code == "DeadlineExceeded")
            #expect(stored.lastError?.message.contains("InternalServerException: boom") == true)
            #expect(service.requests.count == 3)
        }
    }

    @Test("Five attempts without an answer suspend sending: one probe at a time, 1 s apart at first, growing; the first answer resumes")
    func outageSuspendsAndProbes() async throws {
        service.answer { _, _ in .noAnswer }
        service.hold()
        try await withSender(random: 0.1) { outbox, sender, _ in
            for index in 0..<6 { try await submit(outbox, sender, token: "e\(index)", connection: "c\(index)") }
            try await eventually(timeout: .seconds(10), "six in flight") { service.held == 6 }
            service.hold(false)
            service.release()
            try await eventually(timeout: .seconds(10), "six attempts, all retries") {
                let queued = try await outbox.countsByState()[.queued]
                return service.requests.count == 6 && queued == 6
            }
            #expect(sender.healthProblems.first?.contains("the service has not answered") == true)
            // Due again at 0.1 s, but the first probe waits until 1 s.
            try await asleep(until: .milliseconds(100))
            clock.advance(by: .milliseconds(100))
            try await asleep(until: .seconds(1))
            #expect(service.requests.count == 6)
            clock.advance(by: .milliseconds(900))
            try await eventually(timeout: .seconds(10), "one probe") {
                let value = try await outbox.countsByState()[.sending]
                return service.requests.count == 7 && value == 0
            }
            // Still no answer: the probed event is due again at 1.2 s; the next probe goes at 2 s, the
            // one after that would wait 2 s more.
            try await asleep(until: .milliseconds(1200))
            clock.advance(by: .milliseconds(200))
            try await asleep(until: .seconds(2))
            #expect(service.requests.count == 7)
            service.answer { request, _ in .accepted(request) }
            clock.advance(by: .milliseconds(800))
            try await eventually(timeout: .seconds(10), "all sent once the service answers") { (try await outbox.countsByState()[.sent]) == 6 }
            #expect(service.requests.count == 7 + 6)
            #expect(sender.healthProblems.isEmpty)
        }
    }

    /// Stores `count` receipts (`w0`, `w1`, ... on connections `w0`, `w1`, ...) and wakes the
    /// sender after each, as the API does after storing, once its loop sleeps until `elapsed`
    /// (a wake during a round always rings).
    func acceptWhileAsleep(_ outbox: Outbox, _ sender: EventSender, count: Int, asleepUntil elapsed: Duration) async throws {
        for index in 0..<count {
            let event = try EventValidator.validate(EventSubmission(
                contentType: EventContentType.messageRead.rawValue, content: receipt("m\(index)"), clientToken: "w\(index)", connectionToken: "w\(index)"
            ))
            _ = try await outbox.submit(event)
            try await asleep(until: elapsed)
            sender.wake(for: .event)
        }
    }

    @Test("While the quota is spent, accepting an event costs the sender no round; the next token still sends it")
    func spentQuotaSkipsRounds() async throws {
        try await withSender({ $0.quota = QuotaPacer.Configuration(rate: 1, burst: 1) }) { outbox, sender, _ in
            try await submit(outbox, sender, token: "first", connection: "c-first")
            try await eventually(timeout: .seconds(10), "the first sent") { try await state(outbox, "first") == .sent }
            try await asleep(until: .seconds(1))
            let rounds = metrics.counterTotal(label: "participantd_sender_rounds_total")
            try await acceptWhileAsleep(outbox, sender, count: 50, asleepUntil: .seconds(1))
            // The one exception: the round the first event's outcome rang for, if it started
            // between a check and its wake.
            #expect(metrics.counterTotal(label: "participantd_sender_wakes_skipped_total") >= 49)
            #expect(metrics.counterTotal(label: "participantd_sender_rounds_total") <= rounds + 2, "no round for an event that cannot go before the next token")
            clock.advance(by: .seconds(1))
            try await eventually(timeout: .seconds(10), "one sent at the next token") { service.requests.count == 2 }
        }
    }

    @Test("During an outage, accepting an event before the next probe costs the sender no round; the probe still goes at its time")
    func outageSkipsRounds() async throws {
        service.answer { _, _ in .noAnswer }
        try await withSender(random: 0.1) { outbox, sender, _ in
            for index in 0..<5 { try await submit(outbox, sender, token: "e\(index)", connection: "c\(index)") }
            try await eventually(timeout: .seconds(10), "five attempts without an answer: an outage") { sender.isInOutage }
            // The five are due again at 0.1 s; the first probe may go at 1 s, and the loop sleeps
            // until then.
            try await asleep(until: .milliseconds(100))
            clock.advance(by: .milliseconds(100))
            try await asleep(until: .seconds(1))
            let requests = service.requests.count
            let rounds = metrics.counterTotal(label: "participantd_sender_rounds_total")
            let skipped = metrics.counterTotal(label: "participantd_sender_wakes_skipped_total")
            try await acceptWhileAsleep(outbox, sender, count: 50, asleepUntil: .seconds(1))
            #expect(metrics.counterTotal(label: "participantd_sender_wakes_skipped_total") - skipped >= 49)
            #expect(metrics.counterTotal(label: "participantd_sender_rounds_total") <= rounds + 1, "no round for an event that cannot go before the probe")
            #expect(service.requests.count == requests)
            // At the probe's time one request goes, whatever was accepted meanwhile.
            clock.advance(by: .seconds(1))
            try await eventually(timeout: .seconds(10), "the probe") { service.requests.count == requests + 1 }
        }
    }

    @Test("The quota paces requests (burst, then one per 1/rate), and a 429 lowers the rate")
    func pacingAndThrottling() async throws {
        service.answer { request, index in index == 2 ? .throttled : .accepted(request) }
        try await withSender({ $0.quota = QuotaPacer.Configuration(rate: 10, burst: 2) }) { outbox, sender, _ in
            for index in 0..<4 { try await submit(outbox, sender, token: "p\(index)", connection: "c\(index)") }
            try await eventually(timeout: .seconds(10), "the burst") {
                let value = try await outbox.countsByState()[.sent]
                return service.requests.count == 2 && value == 2
            }
            try await asleep(until: .milliseconds(100))
            #expect(service.requests.count == 2)
            clock.advance(by: .milliseconds(100))
            try await eventually(timeout: .seconds(10), "the 429") {
                let value = try await outbox.countsByState()[.queued]
                return service.requests.count == 3 && value == 2
            }
            #expect(sender.quotaRate == 7)
        }
    }

    /// The previous run of a sender: one request started now (by the wall clock) and was answered.
    func previousRun(_ outbox: Outbox) async throws {
        let event = try EventValidator.validate(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: receipt("m-before"), clientToken: "before", connectionToken: "c-before"
        ))
        _ = try await outbox.submit(event)
        let leased = try await outbox.leaseDue(instance: InstanceName.defaultName, limit: 1)
        _ = try await outbox.record(.sent(id: "id-before", absoluteTime: "2026-12-02T00:00:00.000Z"), for: leased[0])
    }

    @Test("A sender that starts just after the previous run's last request starts with an empty bucket: the rate, no burst")
    func restartStartsWithoutTheBurst() async throws {
        try await withSender({ $0.quota = QuotaPacer.Configuration(rate: 10, burst: 15) }, beforeStart: { outbox in
            try await previousRun(outbox)
        }) { outbox, sender, _ in
            for index in 0..<3 { try await submit(outbox, sender, token: "r\(index)", connection: "c\(index)") }
            try await asleep(until: .milliseconds(100))
            #expect(service.requests.isEmpty, "no burst")
            clock.advance(by: .milliseconds(100))
            try await eventually(timeout: .seconds(10), "one at the first token") { service.requests.count == 1 }
            try await asleep(until: .milliseconds(200))
            #expect(service.requests.count == 1)
        }
    }

    @Test("A sender that starts long after the previous run's last request has its burst")
    func startAfterAPauseHasTheBurst() async throws {
        try await withSender({ $0.quota = QuotaPacer.Configuration(rate: 10, burst: 15) }, beforeStart: { outbox in
            try await previousRun(outbox)
            clock.advance(by: .seconds(2))  // no sleeper yet: the time of day moves on
        }) { outbox, sender, _ in
            for index in 0..<3 { try await submit(outbox, sender, token: "r\(index)", connection: "c\(index)") }
            try await eventually(timeout: .seconds(10), "the three at once") { service.requests.count == 3 }
        }
    }

    @Test("One connection's events go one at a time in acceptance order; a stuck one holds up no other connection")
    func perConnectionOrder() async throws {
        service.hold()
        try await withSender { outbox, sender, _ in
            for token in ["a1", "a2", "a3"] { try await submit(outbox, sender, token: token, connection: "A") }
            try await submit(outbox, sender, token: "b1", connection: "B")
            try await eventually(timeout: .seconds(10), "a1 and b1 in flight") { service.held == 2 }
            #expect(Set(service.clientTokens) == ["a1", "b1"])
            service.hold(false)
            service.release()
            try await eventually(timeout: .seconds(10), "all sent") { (try await outbox.countsByState()[.sent]) == 4 }
            #expect(service.clientTokens.filter { $0.hasPrefix("a") } == ["a1", "a2", "a3"])
        }
    }

    @Test("Graceful shutdown waits for requests in flight up to the timeout, then cuts them off; their events stay queued")
    func gracefulShutdownCutsOffAtTheTimeout() async throws {
        service.hold()
        try await withSender(shutdownTimeout: .seconds(10)) { outbox, sender, _ in
            try await submit(outbox, sender, token: "stuck", connection: "c1")
            try await eventually(timeout: .seconds(10), "in flight") { service.held == 1 }
            #expect(sender.requestsInFlight == 1)
        } afterStop: { outbox in
            // The shutdown waited on the manual clock until its timeout, then cut the request
            // off: its attempt was recorded as a retry, so nothing is left `sending`.
            #expect(service.held == 0)
            #expect(service.requests.count == 1)
            let state = try await outbox.event(clientToken: "stuck")?.state
            #expect(state == .queued)
        }
    }
}
