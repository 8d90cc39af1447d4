import Foundation
import GRDB
import InMemoryLogging
import Logging
@testable import ParticipantClient
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantInput
import ParticipantWire
import ParticipantTestSupport
import Testing

/// Acknowledged means on disk: a sync of the WAL for every acknowledged commit (the outbox's own,
/// beside the next transaction: counted by strace on the real binary), and no acknowledged event
/// lost to a power cut (simulated by `Tests/Shims/powercut.c`).
// A bound on each test (each takes seconds): a hang fails, naming its test, instead of holding
// the run until CI's limit. (Once, beside a valgrind run, a suite run stalled with these suites'
// daemons alive.)
// Serialized: each loads the machine (real daemons syncing as fast as they can, restarts), and
// together with the rest of the suite they starved timing tests elsewhere.
@Suite(.timeLimit(.minutes(3)), .serialized) struct DurabilityTests {
    // MARK: Syncs, counted at the system-call level

    @Test("The real binary syncs the WAL at least once per acknowledged commit (strace); with syncEveryCommit off it does not")
    func syncPerAcknowledgedCommit() async throws {
        let submissions = 40
        let full = try await Self.countWALSyncs(submissions: submissions, environment: [:])
        #expect(full.acknowledged == submissions)
        print("WAL syncs for \(submissions) acknowledged submissions: \(full.walSyncs) with syncEveryCommit")
        #expect(full.walSyncs >= submissions, "\(full.walSyncs) WAL syncs for \(submissions) acknowledged commits")
        // The same count with the sync switched off: the counter sees the difference.
        let normal = try await Self.countWALSyncs(submissions: submissions, environment: ["PARTICIPANTD_OUTBOX_SYNC_EVERY_COMMIT": "false"])
        print("WAL syncs for \(submissions) acknowledged submissions: \(normal.walSyncs) with syncEveryCommit off")
        #expect(normal.acknowledged == submissions)
        #expect(normal.walSyncs < submissions / 4, "\(normal.walSyncs) WAL syncs with syncEveryCommit off")
    }

    /// Starts the daemon, attaches strace to all its threads, submits one event at a time (each
    /// waits for its 202), stops the daemon, and counts `fdatasync`/`fsync` calls on the outbox's WAL.
    static func countWALSyncs(submissions: Int, environment: [String: String]) async throws -> (acknowledged: Int, walSyncs: Int) {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Every event on one connection, the first held at the service: only submissions commit
        // while strace counts (the sender leases the first event once and then waits).
        let standIn = try await ParticipantServiceStandIn.start { _ in .delay(.seconds(120), then: .accept) }
        defer { Task { try? await standIn.stop() } }
        let socket = directory.path + "/participantd.sock"
        let daemon = try ChildProcess(
            try BuiltProduct.path("participantd"),
            ["--socket", socket, "--database", directory.path + "/outbox.sqlite", "--endpoint", standIn.endpoint],
            // The request held at the service is cut off at once when the daemon stops.
            environment: environment.merging(["PARTICIPANTD_COALESCING_NEWEST_RECEIPT_ONLY": "false", "PARTICIPANTD_SHUTDOWN_TIMEOUT_SECONDS": "0"]) { $1 }
        )
        defer { daemon.kill(SIGKILL) }
        let client = DaemonClient(socketPath: socket, timeout: .seconds(10))
        try await eventually(timeout: .seconds(30), "daemon ready") { (try? await client.health()) != nil }
        // Held at the service before counting starts.
        _ = try await client.submit(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: receipt("first"), clientToken: "first", connectionToken: "c"
        ))
        try await eventually(timeout: .seconds(10), "first event at the service") { standIn.requests.count == 1 }

        let trace = directory.path + "/strace.txt"
        let strace = try ChildProcess("/usr/bin/strace", ["-f", "-qq", "-y", "-e", "trace=fdatasync,fsync", "-o", trace, "-p", String(daemon.pid)])
        try await eventually(timeout: .seconds(10), "strace attached to every thread") { Self.everyThreadTraced(daemon.pid) }

        var acknowledged = 0
        for index in 0..<submissions {
            let answer = try await client.submit(EventSubmission(
                contentType: EventContentType.messageRead.rawValue, content: receipt("m-\(index)"),
                clientToken: "e-\(index)", connectionToken: "c"
            ))
            if answer.created { acknowledged += 1 }
        }
        // strace ends with the daemon (a signal to strace itself may be ignored: the test process
        // passes its ignored signals on to its children). The stop adds a checkpoint's syncs.
        daemon.kill(SIGTERM)
        #expect(try await daemon.exitStatus() == 0)
        _ = try await strace.exitStatus()
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        let walSyncs = lines.filter { ($0.contains("fdatasync(") || $0.contains("fsync(")) && $0.contains("outbox.sqlite-wal>") }.count
        return (acknowledged, walSyncs)
    }

    /// Whether every thread of `pid` has a tracer (strace has attached to all of them).
    static func everyThreadTraced(_ pid: Int32) -> Bool {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task"), !threads.isEmpty else { return false }
        return threads.allSatisfy { thread in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/status", encoding: .utf8) else { return false }
            return status.split(separator: "\n").contains { $0.hasPrefix("TracerPid:") && !$0.hasSuffix("\t0") }
        }
    }

    // MARK: Power cuts

    @Test("Power cuts at random moments under load and service faults: every acknowledged event kept, in order per chat, sent under one ClientToken", .timeLimit(.minutes(5)))
    func powerCuts() async throws {
        let run = try await PowerCutRun(seed: 20_261_206, cuts: 15, syncEveryCommit: true).run()
        print("power cuts (syncEveryCommit): \(run.summary)")
        #expect(run.cuts == 15)
        #expect(run.acknowledged.count >= 300, "too little load to mean anything: \(run.summary)")
        // (Counts, so that a failure prints the first few, not thousands.)
        #expect(run.missingAfterCut.count == 0, "acknowledged, then gone after a cut: \(run.missingAfterCut.sorted().prefix(10))")
        #expect(run.neverDelivered.count == 0, "acknowledged, never delivered: \(run.neverDelivered.sorted().prefix(10))")
        #expect(run.outOfOrder.count == 0, "delivered out of order: \(run.outOfOrder.prefix(3))")
        #expect(run.underSeveralTokens.count == 0, "one event under several ClientTokens: \(run.underSeveralTokens.prefix(10))")
        #expect(run.invalidRequests == 0)
    }

    @Test("Negative control: with syncEveryCommit off the same power cuts lose acknowledged events", .timeLimit(.minutes(5)))
    func powerCutsLoseWithoutSync() async throws {
        let run = try await PowerCutRun(seed: 20_261_206, cuts: 6, syncEveryCommit: false).run()
        print("power cuts (syncEveryCommit off, negative control): \(run.summary)")
        // The simulator sees a loss: acknowledged events are gone after the cuts.
        #expect(run.missingAfterCut.count > 0, "the simulator saw no loss: \(run.summary)")
    }

    // MARK: Storage faults

    @Test("An outbox a newer participantd migrated stops the real binary at start with exit 65, naming what it does not know and the way back; the file is left as it was")
    func newerSchemaStopsTheDaemon() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withTestOutbox(clock: ManualClock(), storage: .file(in: directory)) { outbox in
            _ = try await submitEvent(outbox, .messageRead, "kept", message: "m", connection: "c")
        }
        let database = directory.path + "/outbox.sqlite"
        try await markMigratedByANewerVersion(databaseAt: database)
        let (status, _, errors) = try await ChildProcess.run(try BuiltProduct.path("participantd"), [
            "--socket", directory.path + "/participantd.sock", "--database", database, "--endpoint", "http://127.0.0.1:9",
        ])
        #expect(status == 65, "\(errors.suffix(2_000))")
        #expect(errors.contains("a newer participantd migrated the outbox database") && errors.contains(laterMigration), "\(errors.suffix(2_000))")
        #expect(errors.contains("install that version again") && errors.contains("participantctl backup"))
        #expect(try await storedClientTokens(databaseAt: database) == ["kept"])
    }

    @Test("A damaged outbox stops the real binary at start with exit 65, the file and the way back named; the unit does not restart it")
    func damagedOutboxStopsTheDaemon() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try await damagedOutbox(in: directory)
        let (status, _, errors) = try await ChildProcess.run(try BuiltProduct.path("participantd"), [
            "--socket", directory.path + "/participantd.sock", "--database", database, "--endpoint", "http://127.0.0.1:9",
        ])
        #expect(status == 65, "\(errors.suffix(2_000))")
        #expect(errors.contains("the outbox database \(database) is damaged") && errors.contains("quick_check"), "\(errors.suffix(2_000))")
        #expect(errors.contains("restore the last backup") && errors.contains("participantctl backup"))
        let unit = try String(contentsOfFile: SystemdTests.repository + "/systemd/participantd.service", encoding: .utf8)
        #expect(unit.split(separator: "\n").contains { $0.hasPrefix("RestartPreventExitStatus=") && $0.split(separator: " ").contains("65") })
    }

    @Test("A failed sync while committing: nothing acknowledged after it, the daemon exits 74 at once; restarted, it sends every event acknowledged before")
    func failStopOnAFailedSync() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let shim = try await PowerCutRun.buildShim("syncfault", into: directory.path)
        let database = directory.path + "/outbox.sqlite"
        let trigger = directory.path + "/fail-next-sync"
        let faultLog = directory.path + "/syncfault.log"
        // Requests are held at the service until the restart: before the fault, only submissions
        // commit (each chat's first event leased once), so the failed sync is a submission's.
        let gate = ParticipantServiceStandIn.Gate()
        let standIn = try await ParticipantServiceStandIn.start { _ in .wait(gate, then: .accept) }
        defer { Task { try? await standIn.stop() } }
        let socket = directory.path + "/participantd.sock"
        let arguments = ["--socket", socket, "--database", database, "--endpoint", standIn.endpoint]
        let environment = [
            "PARTICIPANTD_COALESCING_NEWEST_RECEIPT_ONLY": "false", "PARTICIPANTD_COALESCING_DELIVERED_HOLD_MILLISECONDS": "0",
            "PARTICIPANTD_SHUTDOWN_TIMEOUT_SECONDS": "0",
        ]
        let client = DaemonClient(socketPath: socket, timeout: .seconds(5))
        let daemonPath = try BuiltProduct.path("participantd")
        let daemon = try ChildProcess(daemonPath, arguments, environment: environment.merging([
            "LD_PRELOAD": shim, "SYNCFAULT_PATH": database, "SYNCFAULT_TRIGGER": trigger, "SYNCFAULT_LOG": faultLog,
        ]) { $1 })
        defer { daemon.kill(SIGKILL) }
        try await eventually(timeout: .seconds(30), "daemon ready") { (try? await client.health()) != nil }

        // Workers submit one receipt at a time, each to its own chat, until the daemon is gone.
        // After a worker's first refusal, no later submission of it may be acknowledged.
        struct Worker { var acknowledged: [String] = []; var refusals: [String] = []; var acknowledgedAfterRefusal: [String] = [] }
        let workers = Locked([Worker](repeating: Worker(), count: 4))
        let acknowledgedCount = Locked(0)
        let stop = Locked(false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<4 {
                group.addTask {
                    var sequence = 0
                    while daemon.isRunning && !stop.value {
                        let token = "w\(index)-\(sequence)"
                        sequence += 1
                        do {
                            _ = try await client.submit(EventSubmission(
                                contentType: EventContentType.messageRead.rawValue, content: receipt(token), clientToken: token, connectionToken: "chat-\(index)"
                            ))
                            workers.withLock { workers in
                                if workers[index].refusals.isEmpty { workers[index].acknowledged.append(token) } else { workers[index].acknowledgedAfterRefusal.append(token) }
                            }
                            acknowledgedCount.withLock { $0 += 1 }
                        } catch {
                            workers.withLock { $0[index].refusals.append("\(error)") }
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
            try await eventually(timeout: .seconds(30), "acknowledgements before the fault") { acknowledgedCount.value >= 100 }
            _ = FileManager.default.createFile(atPath: trigger, contents: nil)
            let exited = (try? await eventually(timeout: .seconds(20), "exit after the failed sync") { !daemon.isRunning }) != nil
            stop.withLock { $0 = true }
            try await group.waitForAll()
            #expect(exited, "participantd did not exit within 20 s of the failed sync")
        }
        daemon.kill(SIGKILL)
        let status = try await daemon.exitStatus()
        let results = workers.value
        let acknowledged = results.flatMap(\.acknowledged)
        let refusals = results.flatMap(\.refusals)
        print("sync fault: \(acknowledged.count) acknowledged before it, \(refusals.filter { $0.contains("storage failed") }.count) refused with the storage failure, exit status \(status)")
        #expect(status == 74, "\(daemon.standardError.suffix(2_000))")
        #expect(try String(contentsOfFile: faultLog, encoding: .utf8).split(separator: "\n").count == 1, "one sync failed")
        #expect(daemon.standardError.contains("Outbox commit failed on a storage fault"))
        let acknowledgedAfterRefusal = results.flatMap(\.acknowledgedAfterRefusal)
        #expect(acknowledgedAfterRefusal.isEmpty, "acknowledged after a refusal: \(acknowledgedAfterRefusal.prefix(10))")
        #expect(refusals.contains { $0.contains("storage failed") && $0.contains("not acknowledged") }, "the failed commit's submissions were answered: \(refusals.prefix(4))")

        // Restarted without the fault: every event acknowledged before it is sent.
        gate.open()
        let restarted = try ChildProcess(daemonPath, arguments, environment: environment)
        defer { restarted.kill(SIGKILL) }
        try await eventually(timeout: .seconds(30), "every acknowledged event sent after the restart") {
            guard restarted.isRunning else { throw TimedOut(description: "participantd exited: \(restarted.standardError.suffix(2_000))") }
            guard let listed = try? await client.list(limit: 10_000) else { return false }
            let sent = Set(listed.filter { $0.state == .sent }.map(\.clientToken))
            return Set(acknowledged).isSubset(of: sent)
        }
    }
}

/// Load with service faults against the real daemon under `powercut.c`, cut `cuts` times at
/// random moments; what each cut kept is checked against what had been acknowledged.
struct PowerCutRun {
    var seed: UInt64
    var cuts: Int
    var syncEveryCommit: Bool
    var workers = 8
    var chatsPerWorker = 2

    struct Result {
        var cuts = 0
        /// Every ClientToken answered 202 or 200.
        var acknowledged: Set<String> = []
        /// Acknowledged before a cut and missing from the outbox after it.
        var missingAfterCut: Set<String> = []
        var neverDelivered: Set<String> = []
        var outOfOrder: [String] = []
        var underSeveralTokens: [String] = []
        var invalidRequests = 0
        var delivered = 0
        var faults = 0

        var summary: String {
            "\(cuts) cuts, \(acknowledged.count) acknowledged events checked after each, \(missingAfterCut.count) missing after a cut, "
                + "\(neverDelivered.count) never delivered, \(delivered) delivered, \(faults) service faults injected"
        }
    }

    /// Compiles the shim into `directory` (with `ChildProcess`, which waits without blocking a
    /// thread of Swift's concurrency pool: on two cores a blocking wait there stalls every test).
    static func buildShim(_ name: String = "powercut", into directory: String) async throws -> String {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Shims/\(name).c").path
        let output = directory + "/\(name).so"
        let (status, _, errors) = try await ChildProcess.run(
            "/usr/bin/env", ["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", output, source, "-ldl", "-lpthread"]
        )
        guard status == 0 else { throw TimedOut(description: "cc could not build \(source): \(errors)") }
        return output
    }

    func run() async throws -> Result {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let shim = try await Self.buildShim(into: directory.path)
        let database = directory.path + "/outbox.sqlite"
        let disk = directory.path + "/disk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)

        // The service fails about one request in four: 500s, 429s, dropped connections, slow answers.
        let random = Locked(SeededGenerator(state: seed))
        let faults = Locked(0)
        let standIn = try await ParticipantServiceStandIn.start { _ in
            let roll = random.withLock { Double.random(in: 0..<1, using: &$0) }
            let fault: ParticipantServiceStandIn.Behavior? = switch roll {
            case ..<0.08: .error(status: 500, code: "InternalServerException", message: "oops")
            case ..<0.16: .error(status: 429, code: "ThrottlingException", message: "Rate exceeded")
            case ..<0.20: .dropConnection
            case ..<0.22: .delay(.milliseconds(1_500), then: .accept)  // past the 1 s request timeout
            default: nil
            }
            guard let fault else { return .accept }
            faults.withLock { $0 += 1 }
            return fault
        }
        defer { Task { try? await standIn.stop() } }

        let socket = directory.path + "/participantd.sock"
        let arguments = ["--socket", socket, "--database", database, "--endpoint", standIn.endpoint]
        let environment = [
            "LD_PRELOAD": shim, "POWERCUT_DATABASE": database, "POWERCUT_DISK": disk,
            "PARTICIPANTD_OUTBOX_SYNC_EVERY_COMMIT": syncEveryCommit ? "true" : "false",
            "PARTICIPANTD_RETRY_BASE_DELAY_SECONDS": "0.01", "PARTICIPANTD_RETRY_MAX_DELAY_SECONDS": "0.05",
            "PARTICIPANTD_UPSTREAM_REQUEST_TIMEOUT_SECONDS": "1",
            "PARTICIPANTD_QUOTA_REQUESTS_PER_SECOND": "0",
            // Every receipt is sent (none replaced by a newer one, none held): what is counted is loss.
            "PARTICIPANTD_COALESCING_NEWEST_RECEIPT_ONLY": "false", "PARTICIPANTD_COALESCING_DELIVERED_HOLD_MILLISECONDS": "0",
        ]
        let client = DaemonClient(socketPath: socket, timeout: .seconds(5))
        let daemonPath = try BuiltProduct.path("participantd")
        var daemon = try ChildProcess(daemonPath, arguments, environment: environment)
        try await eventually(timeout: .seconds(30), "daemon ready") { (try? await client.health()) != nil }

        // Each worker submits to its own chats, one event at a time, each until it is acknowledged
        // (the same ClientToken again after a failure, as a careful client does).
        let acknowledged = Locked<[String]>([])
        let stop = Locked(false)
        let finished = Locked(0)
        var result = Result()
        let workers = workers, chatsPerWorker = chatsPerWorker
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var sequence = 0
                    // At most 1,000 each: the check after a cut lists the outbox (10,000 at most).
                    while !stop.value && sequence < 1_000 {
                        let chat = worker * chatsPerWorker + sequence % chatsPerWorker
                        let token = "chat\(chat)-\(sequence / chatsPerWorker)"
                        let submission = EventSubmission(
                            contentType: EventContentType.messageRead.rawValue, content: receipt(token),
                            clientToken: token, connectionToken: "chat\(chat)"
                        )
                        while true {
                            if (try? await client.submit(submission)) != nil {
                                acknowledged.withLock { $0.append(token) }
                                break
                            }
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        sequence += 1
                    }
                    finished.withLock { $0 += 1 }
                }
            }

            var moments = SeededGenerator(state: seed ^ 0x5EED)
            for _ in 0..<cuts {
                // Some acknowledgements since the restart, then a cut at a random moment.
                let before = acknowledged.withLock { $0.count }
                try await eventually(timeout: .seconds(30), "acknowledgements after a restart") {
                    acknowledged.withLock { $0.count } >= before + 10 || finished.value == workers
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...300, using: &moments)))

                daemon.kill(SIGKILL)
                _ = try await daemon.exitStatus()
                try Self.powerCut(database: database, disk: disk)
                result.cuts += 1
                daemon = try ChildProcess(daemonPath, arguments, environment: environment)
                try await eventually(timeout: .seconds(30), "daemon ready after a cut") { (try? await client.health()) != nil }

                // Everything acknowledged so far (the old daemon's answers all arrived: it is dead) is in the outbox.
                let acknowledgedSoFar = Set(acknowledged.withLock { $0 })
                // Listed once the new daemon answers it (a connection closed under it, once in a
                // run, is asked again); a daemon that never does fails the test with its stderr.
                var listed: [EventRecord]?
                let current = daemon
                try await eventually(timeout: .seconds(30), "the outbox listed after a cut") {
                    guard current.isRunning else { throw TimedOut(description: "participantd exited after a cut: \(current.standardError.suffix(2_000))") }
                    listed = try? await client.list(limit: 10_000)
                    return listed != nil
                }
                let stored = Set((listed ?? []).map(\.clientToken))
                result.missingAfterCut.formUnion(acknowledgedSoFar.subtracting(stored))
            }
            stop.withLock { $0 = true }
            try await group.waitForAll()
        }
        defer { daemon.kill(SIGKILL) }

        result.acknowledged = Set(acknowledged.value)
        // Delivered: every acknowledged event reaches the service, unless a cut lost it (then
        // nothing is waiting any more).
        let acknowledgedTokens = result.acknowledged
        try await eventually(timeout: .seconds(60), "every acknowledged event delivered, or nothing waiting") {
            if acknowledgedTokens.isSubset(of: Set(standIn.acceptedEvents.map(\.clientToken))) { return true }
            guard let queue = try? await client.health().queue else { return false }
            return queue["queued", default: 0] + queue["sending", default: 0] == 0
        }
        let accepted = standIn.acceptedEvents
        result.delivered = accepted.count
        result.neverDelivered = result.acknowledged.subtracting(accepted.map(\.clientToken))
        // In order per chat: the service first accepted each chat's events in their sequence.
        for chat in 0..<(workers * chatsPerWorker) {
            let sequence = accepted.filter { $0.bearer == "chat\(chat)" }.compactMap { Int($0.clientToken.split(separator: "-").last ?? "") }
            if sequence != sequence.sorted() { result.outOfOrder.append("chat\(chat): \(sequence)") }
        }
        // Each event (its content names it) under its own ClientToken only.
        var tokensByContent: [String: Set<String>] = [:]
        for request in standIn.requests {
            tokensByContent[request.content ?? "", default: []].insert(request.clientToken ?? "")
        }
        result.underSeveralTokens = tokensByContent.filter { $0.value.count != 1 }.map { "\($0.key): \($0.value.sorted())" }
        result.invalidRequests = standIn.invalidRequestCount
        result.faults = faults.value
        return result
    }

    /// What a power cut leaves: each tracked file as its last sync left it (the disk copy), or no
    /// file where none was synced; the shared-memory index is gone.
    static func powerCut(database: String, disk: String) throws {
        let files = FileManager.default
        let base = (database as NSString).lastPathComponent
        for suffix in ["", "-wal", "-journal"] {
            let live = database + suffix
            let synced = disk + "/" + base + suffix
            try? files.removeItem(atPath: live)
            if files.fileExists(atPath: synced) {
                try files.copyItem(atPath: synced, toPath: live)
            }
        }
        try? files.removeItem(atPath: database + "-shm")
    }
}
