import Foundation
import InMemoryLogging
import Logging
import ParticipantTestSupport
import Testing
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantFleet
import ParticipantServiceStandIn
import ParticipantWire

/// The fleet's decisions, without a database.
@Suite struct FleetRulesTests {
    @Test("Grants are a quarter second of the rate; the fallback is the rate over the hosts seen, or fleet.fallbackShare")
    func rules() {
        #expect(FleetRules.grantSize(rate: 10) == 3)
        #expect(FleetRules.grantSize(rate: 0.5) == 1)
        #expect(FleetRules.share(hostsSeen: 3, share: 0) == 1.0 / 3)
        #expect(FleetRules.share(hostsSeen: 3, share: 0.5) == 0.5)
        let fallback = FleetRules.fallback(QuotaPacer.Configuration(rate: 10, burst: 15), hostsSeen: 3, share: 0)
        #expect(abs(fallback.rate - 10.0 / 3) < 1e-9 && fallback.burst == 5)
        #expect(FleetRules.reconnectDelay(failures: 1) == .milliseconds(100) && FleetRules.reconnectDelay(failures: 3) == .milliseconds(400) && FleetRules.reconnectDelay(failures: 30) == .seconds(5))
    }

    @Test("A grant is clamped to the burst and the shared rate to the configured rate")
    func grantsClamped() {
        let pacer = FleetPacer(instance: "default", id: "default", configuration: QuotaPacer.Configuration(rate: 10, burst: 15), fallbackShare: 0, now: .seconds(0))
        pacer.granted(1_000_000, sharedRate: 1_000, now: .milliseconds(100))
        #expect(pacer.take(upTo: 100, now: .milliseconds(100)) == 15)
        #expect(pacer.currentRate == 10)
        pacer.granted(-5, sharedRate: -1, now: .milliseconds(200))
        #expect(pacer.currentRate == 0 && pacer.take(upTo: 1, now: .milliseconds(200)) == 0)
    }

    @Test("A database that answers but grants nothing for a second while events wait is treated as down, until it grants again")
    func grantsNothing() {
        let pacer = FleetPacer(instance: "default", id: "default", configuration: QuotaPacer.Configuration(rate: 10, burst: 15), fallbackShare: 0, now: .seconds(0))
        pacer.sawHosts(2)
        pacer.granted(3, sharedRate: 10, now: .milliseconds(0))
        #expect(pacer.take(upTo: 5, now: .milliseconds(0)) == 3, "wanting two more from here")
        pacer.granted(0, sharedRate: 10, now: .milliseconds(500))
        #expect(pacer.problem == nil, "half a second without tokens: the fleet may be busy")
        pacer.granted(0, sharedRate: 10, now: .milliseconds(1_000))
        #expect(pacer.problem?.contains("granted no request") == true, "\(pacer.problem ?? "ok")")
        #expect(abs(pacer.currentRate - 5) < 1e-9, "the fallback share: 10 / 2 hosts")
        pacer.granted(0, sharedRate: 10, now: .milliseconds(1_100))
        #expect(pacer.problem != nil, "an answer that grants nothing does not end it")
        #expect(pacer.take(upTo: 1, now: .milliseconds(3_000)) == 1, "paced alone meanwhile")
        pacer.granted(2, sharedRate: 10, now: .milliseconds(3_100))
        #expect(pacer.problem == nil && pacer.currentRate == 10)
    }

    @Test("A fleet pacer sends nothing before the database's first word, takes only granted tokens, drops them after half a second, and falls back to its share when the database fails")
    func pacer() {
        let pacer = FleetPacer(instance: "default", id: "default", configuration: QuotaPacer.Configuration(rate: 10, burst: 15), fallbackShare: 0, now: .seconds(0))
        #expect(pacer.take(upTo: 5, now: .seconds(0)) == 0, "connecting")
        #expect(pacer.nextRequest()?.want == 3)
        pacer.granted(3, sharedRate: 10, now: .milliseconds(100))
        #expect(pacer.problem == nil)
        #expect(pacer.take(upTo: 2, now: .milliseconds(100)) == 2)
        pacer.giveBack(1)
        #expect(pacer.nextRequest() == nil, "fewer were due than taken: no demand")
        #expect(pacer.take(upTo: 5, now: .milliseconds(700)) == 0, "the grant's lifetime passed")
        pacer.recordThrottle()
        pacer.recordSuccess()
        let request = pacer.nextRequest()
        #expect(request?.throttles == 1 && request?.successes == 1 && request?.want == 3)
        pacer.notReported(request!)
        pacer.sawHosts(3)
        pacer.databaseFailed(problem: "down", now: .seconds(1))
        #expect(pacer.problem == "down")
        #expect(abs(pacer.fallbackRate - 10.0 / 3) < 1e-9)
        #expect(pacer.take(upTo: 10, now: .seconds(1)) == 0, "the fallback starts empty: the fleet may have spent the service's bucket")
        #expect(pacer.take(upTo: 10, now: .seconds(4)) == 5, "then its burst: 15 / 3")
        let resumed = pacer.nextRequest()
        #expect(resumed?.throttles == 1, "the 429 is reported when the database answers")
        #expect(resumed?.spentElsewhere == true, "the shared bucket's saved tokens were spent meanwhile")
        pacer.granted(1, sharedRate: 7, now: .seconds(2))
        #expect(pacer.problem == nil && pacer.currentRate == 7)
    }
}

@Suite struct FleetDatabaseAddressTests {
    @Test("fleet.postgresURL: the parts, sslmode, and a password that never shows")
    func address() throws {
        let address = try FleetDatabase.Address(url: "postgres://pd:s%40cret@db.internal:6543/quota?sslmode=verify-full")
        #expect(address.host == "db.internal" && address.port == 6543 && address.user == "pd" && address.database == "quota")
        #expect(address.password == "s@cret" && address.sslMode == "verify-full")
        #expect(address.description == "postgres://pd@db.internal:6543/quota?sslmode=verify-full")
        #expect(try FleetDatabase.Address(url: "postgresql://pd@db/quota").port == 5432)
        #expect(try FleetDatabase.Address(url: "postgresql://pd@db/quota").sslMode == "prefer")
        #expect(try FleetDatabase.Address(url: "postgres://pd@db/q?sslmode=disable").tlsConfiguration == nil)
    }

    @Test("The fleet's keys come from PARTICIPANTD_FLEET_POSTGRES_URL and friends, as swift-configuration maps them")
    func environment() async throws {
        #expect(DaemonConfiguration.environmentVariable(for: "fleet.postgresURL") == "PARTICIPANTD_FLEET_POSTGRES_URL")
        #expect(DaemonConfiguration.environmentVariable(for: "retry.baseDelaySeconds") == "PARTICIPANTD_RETRY_BASE_DELAY_SECONDS")
        let configuration = try await ConfigurationSources.load(flags: [:], environment: [
            "PARTICIPANTD_FLEET_POSTGRES_URL": "postgres://pd@db.internal/quota?sslmode=require",
            "PARTICIPANTD_FLEET_HOST_NAME": "host-7", "PARTICIPANTD_INSTANCE_ID": "arn:aws:connect:eu-west-2:1:instance/x",
        ], configFile: nil)
        #expect(configuration.fleet.postgresURL == "postgres://pd@db.internal/quota?sslmode=require")
        #expect(configuration.fleet.hostName == "host-7" && configuration.instanceId == "arn:aws:connect:eu-west-2:1:instance/x")
    }

    @Test("A fleet.postgresURL that cannot be used exits 78 naming the key and the rule, without the password", arguments: [
        ("mysql://pd@db/q", "postgres://USER@HOST"),
        ("postgres://db/q", "names no user"),
        ("postgres://pd@db", "names no database"),
        ("postgres://pd:hunter2@db/q?sslmode=always", "sslmode must be"),
        ("postgres://pd@db/q?timeout=3", "only the parameter sslmode"),
    ])
    func badURL(_ url: String, _ rule: String) async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await ConfigurationSources.load(flags: ["fleet.postgresURL": url], environment: [:], configFile: nil)
        }
        #expect(error?.key == "fleet.postgresURL")
        #expect(error?.rule.contains(rule) == true, "\(String(describing: error))")
        #expect(error?.description.contains("hunter2") == false)
    }
}

/// Daemons that share one quota through a real PostgreSQL, against one stand-in enforcing it.
@Suite(.serialized) struct FleetTests {
    struct Member {
        let configuration: DaemonConfiguration
        let logs: InMemoryLogHandler
        let daemon: InProcessDaemon
        var client: DaemonClient { DaemonClient(socketPath: configuration.socketPath, timeout: .seconds(10)) }
    }

    /// `hosts` daemons of one fleet, delivering to one stand-in at 10/s burst 15.
    func withFleet(hosts: Int, _ body: ([Member], ParticipantServiceStandIn, TestPostgres) async throws -> Void) async throws {
        let postgres = try await TestPostgres.start()
        let standIn = try await ParticipantServiceStandIn.start(behavior: { _ in .accept })
        standIn.setQuota(rate: 10, burst: 15)
        var directories: [TemporaryDirectory] = []
        var members: [Member] = []
        defer { for directory in directories { directory.remove() } }
        do {
            for index in 0..<hosts {
                let directory = try TemporaryDirectory()
                directories.append(directory)
                var configuration = TestDaemon.testConfiguration(directory: directory, endpoint: standIn.endpoint)
                configuration.sender.quota = QuotaPacer.Configuration(rate: 10, burst: 15)
                configuration.sender.retry = RetryPolicy(baseDelay: .milliseconds(200), maxDelay: .seconds(2))
                configuration.fleet.postgresURL = postgres.url
                configuration.fleet.passwordFile = postgres.passwordFile
                configuration.fleet.hostName = "host-\(index + 1)"
                let logs = InMemoryLogHandler()
                var logger = Logger(label: "fleet-\(index)", factory: { _ in logs })
                logger.logLevel = .debug
                let daemon = await InProcessDaemon.start(configuration: configuration, logger: logger)
                members.append(Member(configuration: configuration, logs: logs, daemon: daemon))
            }
            for member in members {
                try await eventually(timeout: .seconds(30), "every daemon shares the quota") {
                    (try? await member.client.stats())?.fleet?.shared == true
                }
            }
            try await body(members, standIn, postgres)
        } catch {
            for member in members { await member.daemon.stop() }
            try? await standIn.stop()
            await postgres.remove()
            throw error
        }
        for member in members { await member.daemon.stop() }
        try await standIn.stop()
        await postgres.remove()
        for member in members {
            let text = member.logs.entries.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n")
            #expect(!text.contains(postgres.password), "the database password is never logged")
        }
    }

    /// Waits (15 s at most) until every member's health is degraded, naming the fleet's database.
    func eachSaysTheDatabaseDoesNotAnswer(_ members: [Member]) async throws {
        try await eventually(timeout: .seconds(15), "each daemon says the database does not answer") {
            for member in members {
                let health = try await member.client.health()
                guard health.status == "degraded", health.problems.contains(where: { $0.contains("fleet's database") }) else { return false }
            }
            return true
        }
    }

    /// Waits (20 s at most) until every member shares the quota through the database again.
    func sharingResumes(_ members: [Member]) async throws {
        try await eventually(timeout: .seconds(20), "sharing resumes") {
            for member in members where try await member.client.stats().fleet?.shared != true { return false }
            return true
        }
    }

    /// `count` read receipts, each on its own connection, submitted at once to `member`.
    func submitReceipts(_ count: Int, to member: Member, prefix: String) async throws {
        try await withThrowingTaskGroup { group in
            for index in 0..<count {
                group.addTask {
                    _ = try await member.client.submit(EventSubmission(
                        contentType: EventContentType.messageRead.rawValue, content: receipt("\(prefix)-\(index)"),
                        clientToken: "\(prefix)-\(index)", connectionToken: "\(prefix)-conn-\(index)"
                    ))
                }
            }
            try await group.waitForAll()
        }
    }

    @Test("sslmode=require talks TLS to a server that takes nothing else; sslmode=disable is refused there, in PostgreSQL's words")
    func tls() async throws {
        let postgres = try await TestPostgres.start(tls: true)
        do {
            for (mode, shares) in [("require", true), ("disable", false)] {
                try await TestDaemon.with(configure: { configuration in
                    configuration.fleet.postgresURL = postgres.url(sslmode: mode)
                    configuration.fleet.passwordFile = postgres.passwordFile
                }) { daemon in
                    if shares {
                        // (Each try has the 1 s statement limit, TLS and SCRAM included: a debug
                        // build on a loaded machine needed more than 20 s of tries once.)
                        try await eventually(timeout: .seconds(60), "the quota is shared over TLS") {
                            try await daemon.client.stats().fleet?.shared == true
                        }
                    } else {
                        try await eventually(timeout: .seconds(20), "health says why the database refuses") {
                            let health = try await daemon.client.health()
                            return health.status == "degraded" && health.problems.contains { $0.contains("pg_hba.conf") && $0.contains("no encryption") }
                        }
                    }
                    // What the alert rule ParticipantdFleetDatabaseDown watches.
                    let metrics = try await MetricsTests.scrape(daemon)
                    #expect(metrics["participantd_fleet_quota_shared", [:]] == (shares ? 1 : 0))
                    #expect(!daemon.logText.contains(postgres.password))
                }
            }
        } catch {
            await postgres.remove()
            throw error
        }
        await postgres.remove()
    }

    @Test("sslmode=verify-full checks the server: its self-signed certificate is refused, and trusted through fleet.postgresCAFile")
    func verifyFull() async throws {
        let postgres = try await TestPostgres.start(tls: true)
        do {
            for trusted in [false, true] {
                try await TestDaemon.with(configure: { configuration in
                    configuration.fleet.postgresURL = postgres.url(sslmode: "verify-full")
                    configuration.fleet.passwordFile = postgres.passwordFile
                    configuration.fleet.caFile = trusted ? postgres.certificateFile : nil
                }) { daemon in
                    if trusted {
                        try await eventually(timeout: .seconds(60), "the quota is shared over checked TLS") {
                            try await daemon.client.stats().fleet?.shared == true
                        }
                    } else {
                        try await eventually(timeout: .seconds(20), "health says the certificate is not trusted") {
                            let health = try await daemon.client.health()
                            return health.status == "degraded" && health.problems.contains { $0.lowercased().contains("certificate") }
                        }
                    }
                }
            }
            // A CA file with a mode that does not check certificates is a mistake, named.
            var settings = FleetSettings()
            settings.postgresURL = postgres.url(sslmode: "require")
            settings.caFile = postgres.certificateFile
            #expect(throws: ConfigurationError.self) { try settings.check() }
        } catch {
            await postgres.remove()
            throw error
        }
        await postgres.remove()
    }

    @Test("Three daemons share one instance's quota: every receipt delivered, few 429s, and stats show the members")
    func sharedQuota() async throws {
        try await withFleet(hosts: 3) { members, standIn, _ in
            for (index, member) in members.enumerated() {
                try await submitReceipts(25, to: member, prefix: "h\(index)")
            }
            try await eventually(timeout: .seconds(60), "every receipt delivered") {
                Set(standIn.acceptedEvents.map(\.clientToken)).count == 75
            }
            // Alone, three daemons at 10/s each would draw dozens of 429s here.
            #expect(standIn.throttledCount <= 5, "\(standIn.throttledCount) 429s")
            let stats = try await members[0].client.stats()
            let fleet = try #require(stats.fleet)
            #expect(fleet.host == "host-1" && fleet.shared)
            #expect(!fleet.database.contains(members[0].configuration.fleet.passwordFile ?? "-"))
            #expect(Set(fleet.instances.first?.members.map(\.host) ?? []) == ["host-1", "host-2", "host-3"])
        }
    }

    @Test("PostgreSQL hung mid-way (stopped, its connections open): health says so within seconds, events flow at the fallback share, daemons stop at once; sharing resumes when it answers")
    func databaseHangs() async throws {
        try await withFleet(hosts: 2) { members, standIn, postgres in
            for (index, member) in members.enumerated() {
                try await submitReceipts(10, to: member, prefix: "a\(index)")
            }
            try await eventually(timeout: .seconds(30), "some receipts delivered") { standIn.acceptedEvents.count >= 10 }
            try await postgres.freeze()
            do {
                // A statement that gets no answer counts as one after FleetQuota.statementTimeout.
                try await eachSaysTheDatabaseDoesNotAnswer(members)
                for (index, member) in members.enumerated() {
                    try await submitReceipts(5, to: member, prefix: "b\(index)")
                }
                try await eventually(timeout: .seconds(30), "every receipt delivered at the fallback share") {
                    Set(standIn.acceptedEvents.map(\.clientToken)).count == 30
                }
            } catch {
                try await postgres.thaw()
                throw error
            }
            try await postgres.thaw()
            try await sharingResumes(members)

            // Hung again, the daemons are stopped as by SIGTERM: each stops within seconds, not when
            // the database answers (cancelled after 20 s, after the check).
            try await postgres.freeze()
            let stopped = Locked(0)
            for member in members {
                Task {
                    await member.daemon.stop(grace: .seconds(20))
                    stopped.withLock { $0 += 1 }
                }
            }
            let stoppedInTime = (try? await eventually(timeout: .seconds(15), "every daemon stopped") { stopped.value == members.count }) != nil
            try await postgres.thaw()
            #expect(stoppedInTime, "a daemon did not stop while its fleet's database did not answer")
        }
    }

    @Test("PostgreSQL stopped mid-way: nothing refused or lost, health degraded naming the database, sharing resumes when it is back")
    func databaseOutage() async throws {
        try await withFleet(hosts: 3) { members, standIn, postgres in
            for (index, member) in members.enumerated() {
                try await submitReceipts(20, to: member, prefix: "a\(index)")
            }
            try await eventually(timeout: .seconds(30), "some receipts delivered") { standIn.acceptedEvents.count >= 20 }
            try await postgres.stopServer()
            try await eachSaysTheDatabaseDoesNotAnswer(members)
            // Accepted while the database is down.
            for (index, member) in members.enumerated() {
                try await submitReceipts(5, to: member, prefix: "b\(index)")
            }
            try await postgres.startServer()
            try await eventually(timeout: .seconds(60), "every receipt delivered") {
                Set(standIn.acceptedEvents.map(\.clientToken)).count == 75
            }
            try await sharingResumes(members)
            #expect(standIn.throttledCount <= 8, "\(standIn.throttledCount) 429s")
        }
    }
}

/// The fleet's statement limit, on a manual clock, with an operation that ignores cancellation
/// (as a postgres-nio query in flight does).
struct DeadlineTests {
    /// An operation that ends only when the test lets it, whatever its task's cancellation.
    final class Held: Sendable {
        private let waiting = Locked<CheckedContinuation<Int, Never>?>(nil)
        var started: Bool { waiting.withLock { $0 != nil } }
        func run() async -> Int { await withCheckedContinuation { continuation in waiting.withLock { $0 = continuation } } }
        func finish(_ value: Int) { waiting.withLock { $0 }?.resume(returning: value) }
    }

    @Test("An operation that ignores cancellation: nil once the limit has passed, without waiting for it to end")
    func givesUpAtTheLimit() async throws {
        let clock = ManualClock()
        let held = Held()
        let result = Locked<Int??>(nil)
        let caller = Task { let value = try await withinDeadline(.seconds(1), on: clock.stopwatch) { await held.run() }; result.withLock { $0 = .some(value) } }
        try await eventually(timeout: .seconds(10), "the operation and the timer started") { held.started && clock.wakeUps == [.seconds(1)] }
        clock.advance(by: .milliseconds(999))
        #expect(result.value == nil)
        clock.advance(by: .milliseconds(1))
        // (Waited for with a limit, so that a deadline that waits for its operation fails here, not hangs.)
        let gaveUp = (try? await eventually(timeout: .seconds(10), "nil at the limit") { result.value == .some(nil) }) != nil
        held.finish(7)  // ends later, its outcome dropped
        try await caller.value
        #expect(gaveUp, "\(String(describing: result.value))")
    }

    @Test("The operation's value or error when it ends first, and the timer stopped")
    func valueBeforeTheLimit() async throws {
        let clock = ManualClock()
        #expect(try await withinDeadline(.seconds(1), on: clock.stopwatch) { 42 } == 42)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await withinDeadline(.seconds(1), on: clock.stopwatch) { () throws -> Int in throw Refused() } }
        try await eventually(timeout: .seconds(10), "no timer left sleeping") { clock.wakeUps.isEmpty }
    }

    @Test("The caller's cancellation ends the wait at once with CancellationError, the operation still running")
    func cancelledCaller() async throws {
        let clock = ManualClock()
        let held = Held()
        let caller = Task { try await withinDeadline(.seconds(60), on: clock.stopwatch) { await held.run() } }
        try await eventually(timeout: .seconds(10), "the operation started") { held.started }
        let ended = Locked<(any Error)?>(nil)
        Task {
            do { _ = try await caller.value } catch { ended.withLock { $0 = error } }
        }
        caller.cancel()
        let endedAtOnce = (try? await eventually(timeout: .seconds(10), "the caller ended") { ended.value != nil }) != nil
        held.finish(1)
        #expect(endedAtOnce && ended.value is CancellationError, "\(String(describing: ended.value))")
    }
}
