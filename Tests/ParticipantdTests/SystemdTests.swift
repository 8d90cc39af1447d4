import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantWire
import ParticipantTestSupport
import Testing

/// The daemon as systemd runs it: notifications, socket activation, the units themselves.
@Suite struct SystemdTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    @Test("participantd exits 78 on a misspelt key, and says which")
    func daemonExitsOnAnUnknownKey() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/participantd.yaml"
        try "regoin: eu-west-2\n".write(toFile: file, atomically: true, encoding: .utf8)
        let (status, _, errors) = try await ChildProcess.run(try BuiltProduct.path("participantd"), [
            "--config", file, "--socket", directory.path + "/p.sock", "--database", directory.path + "/outbox.sqlite",
        ])
        #expect(status == 78)
        #expect(errors.contains("configuration key regoin: is not a configuration key") && errors.contains("did you mean region?"), "\(errors)")
    }

    @Test("participantd.service scores at most 1.9 (OK) in systemd-analyze security")
    func hardeningScore() async throws {
        let (status, output, errors) = try await ChildProcess.run(
            "/usr/bin/systemd-analyze", ["security", "--offline=yes", Self.repository + "/systemd/participantd.service"]
        )
        #expect(status == 0, "\(errors)")
        let line = try #require(output.split(separator: "\n").first { $0.contains("Overall exposure level") }, "\(output)")
        let score = try #require(line.split(separator: " ").compactMap { Double($0) }.last, "\(line)")
        #expect(score <= 1.9, "\(line)")
        // What HTTPS to the service needs stays open.
        let unit = try String(contentsOfFile: Self.repository + "/systemd/participantd.service", encoding: .utf8)
        #expect(unit.contains("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK"))
        #expect(!unit.contains("PrivateNetwork=yes") && !unit.contains("IPAddressDeny=any"))
    }

    @Test("scripts/install stages binaries, config and units, and systemd-analyze verify passes on them")
    func installAndVerify() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let stage = directory.path + "/root"
        let binDirectory = URL(fileURLWithPath: try BuiltProduct.path("participantd")).deletingLastPathComponent().path
        let (status, _, errors) = try await ChildProcess.run(
            "/bin/bash", [Self.repository + "/scripts/install", "--destdir", stage, "--bin-dir", binDirectory]
        )
        #expect(status == 0, "\(errors)")
        for file in ["/usr/local/bin/participantd", "/usr/local/bin/participantctl", "/etc/participantd/participantd.yaml",
                     "/etc/systemd/system/participantd.service", "/etc/systemd/system/participantd.socket"] {
            #expect(FileManager.default.fileExists(atPath: stage + file), "\(file)")
        }
        // verify wants ExecStart to exist where the unit says: point it into the staging folder.
        let unitDirectory = stage + "/etc/systemd/system"
        let service = try String(contentsOfFile: unitDirectory + "/participantd.service", encoding: .utf8)
        try service.replacingOccurrences(of: "/usr/local/bin/participantd", with: stage + "/usr/local/bin/participantd")
            .write(toFile: unitDirectory + "/participantd.service", atomically: true, encoding: .utf8)
        let (verified, output, verifyErrors) = try await ChildProcess.run(
            "/usr/bin/systemd-analyze", ["verify", unitDirectory + "/participantd.service", unitDirectory + "/participantd.socket"],
            environment: ["SYSTEMD_UNIT_PATH": unitDirectory + ":/lib/systemd/system:/usr/lib/systemd/system"]
        )
        #expect(verified == 0, "\(output)\(verifyErrors)")
        #expect(verifyErrors.isEmpty, "\(verifyErrors)")
    }

    @Test("READY=1 once listening, STATUS= lines, WATCHDOG=1 keep-alives, STOPPING=1 on SIGTERM")
    func notifications() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let notifications = try DatagramReceiver(path: directory.path + "/notify.sock")
        defer { notifications.close() }
        let standIn = try await ParticipantServiceStandIn.start { _ in .accept }
        defer { Task { try? await standIn.stop() } }
        let socket = directory.path + "/participantd.sock"
        let daemon = try ChildProcess(
            try BuiltProduct.path("participantd"),
            ["--socket", socket, "--database", directory.path + "/outbox.sqlite", "--endpoint", standIn.endpoint],
            environment: ["NOTIFY_SOCKET": notifications.path, "WATCHDOG_USEC": "1000000"]
        )
        defer { daemon.kill(SIGKILL) }

        try await eventually(timeout: .seconds(20), "READY=1") { notifications.received.contains { $0.contains("READY=1") } }
        let ready = try #require(notifications.received.first { $0.contains("READY=1") })
        #expect(ready.contains("STATUS=0 events waiting"), "\(ready)")
        // By the time READY=1 arrives the socket answers.
        _ = try await DaemonClient(socketPath: socket, timeout: .seconds(5)).health()
        try await eventually(timeout: .seconds(10), "two WATCHDOG=1") { notifications.received.filter { $0 == "WATCHDOG=1" }.count >= 2 }

        daemon.kill(SIGTERM)
        #expect(try await daemon.exitStatus() == 0)
        #expect(notifications.received.contains { $0.hasPrefix("STOPPING=1") }, "\(notifications.received)")
    }

    @Test("With WatchdogSec=30 (a 5 s tick) an idle daemon does not wait for the tick on SIGTERM")
    func shutdownDoesNotWaitForTheWatchdogTick() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let notifications = try DatagramReceiver(path: directory.path + "/notify.sock")
        defer { notifications.close() }
        let daemon = try ChildProcess(
            try BuiltProduct.path("participantd"),
            ["--socket", directory.path + "/participantd.sock", "--database", directory.path + "/outbox.sqlite", "--endpoint", "http://127.0.0.1:9"],
            environment: ["NOTIFY_SOCKET": notifications.path, "WATCHDOG_USEC": "30000000"]
        )
        defer { daemon.kill(SIGKILL) }
        // The first keep-alive goes right before the loop's first 5 s sleep: SIGTERM lands in it.
        try await eventually(timeout: .seconds(20), "READY=1 and WATCHDOG=1") {
            notifications.received.contains { $0.contains("READY=1") } && notifications.received.contains("WATCHDOG=1")
        }
        let clock = ContinuousClock()
        let signalled = clock.now
        daemon.kill(SIGTERM)
        #expect(try await daemon.exitStatus() == 0)
        let took = clock.now - signalled
        // The stall it guards against is a whole 5 s tick (SIGTERM lands at its start). Alone
        // the daemon stops in well under 0.1 s; with the suite running beside it on two cores,
        // seeing it exit took up to 1.2 s, and 3.1 s with two suites at once.
        #expect(took < .milliseconds(4_500), "stopped \(took) after SIGTERM")
    }

    @Test("Without NOTIFY_SOCKET nothing is sent; WATCHDOG_USEC for another process is ignored")
    func notifierEnvironment() {
        #expect(!SystemdNotifier(environment: [:]).isActive)
        #expect(SystemdNotifier(environment: [:]).send("READY=1") == false)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"]).watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())"]).watchdogInterval == .seconds(30))
    }

    @Test("Socket activation: the daemon serves the listening socket systemd-socket-activate passes")
    func socketActivation() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let standIn = try await ParticipantServiceStandIn.start { _ in .accept }
        defer { Task { try? await standIn.stop() } }
        let socket = directory.path + "/activated.sock"
        // The daemon's own socket setting points elsewhere: the passed socket must be the one served.
        let unused = directory.path + "/unused.sock"
        let activator = try ChildProcess(
            "/usr/bin/systemd-socket-activate",
            ["--listen=" + socket, try BuiltProduct.path("participantd"),
             "--socket", unused, "--database", directory.path + "/outbox.sqlite", "--endpoint", standIn.endpoint]
        )
        defer { activator.kill(SIGKILL) }
        // It says so after listen(2); the socket file exists from bind(2) on, when a connection is still refused.
        try await eventually(timeout: .seconds(10), "the activator listening") { activator.standardError.contains("Listening on") }

        // The first connection starts the daemon, which then answers on that very socket.
        let client = DaemonClient(socketPath: socket, timeout: .seconds(20))
        let answer = try await client.submit(EventSubmission(
            contentType: "application/vnd.amazonaws.connect.event.typing", content: nil,
            clientToken: "activated-1", connectionToken: "connection-activated"
        ))
        #expect(answer.created)
        // The router's answers there carry the headers the bound socket's do.
        let raw = try RawConnection(path: socket)
        await raw.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        let (data, _) = await raw.read(timeout: .seconds(10)) { RawResponse.all($0).count >= 1 }
        let health = try #require(RawResponse.all(data).first)
        #expect(health.status == 200 && health.headers["server"] == "participantd")
        #expect(health.headers["date"].map { $0.hasSuffix(" GMT") && $0.count == 29 } == true, "\(health.headers)")
        try await eventually(timeout: .seconds(10), "event sent") { standIn.acceptedEvents.contains { $0.clientToken == "activated-1" } }
        #expect(!FileManager.default.fileExists(atPath: unused))
        #expect(activator.standardError.contains("socket.activated=true"), "\(activator.standardError)")

        activator.kill(SIGTERM)
        #expect(try await activator.exitStatus() == 0)
    }
}

/// A Unix datagram socket that collects what is sent to it, as systemd's notification socket does.
final class DatagramReceiver: Sendable {
    let path: String
    private let fd: Int32
    private let messages = Locked<[String]>([])
    private let closed = Locked(false)

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw TimedOut(description: "cannot bind \(path): errno \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // A thread of its own: a blocking receive must not hold a thread of Swift's task pool.
        let thread = Thread { [fd, messages, closed] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !closed.withLock({ $0 }) {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 {
                    messages.withLock { $0.append(String(decoding: buffer[0..<count], as: UTF8.self)) }
                }
            }
            Foundation.close(fd)
        }
        thread.start()
    }

    var received: [String] { messages.withLock { $0 } }

    func close() {
        closed.withLock { $0 = true }
    }
}
