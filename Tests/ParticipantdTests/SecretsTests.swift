import Foundation
@testable import ParticipantClient
@testable import ParticipantDaemon
import ParticipantTestSupport
import ParticipantWire
import Testing

/// Secrets kept secret: passwords only from files no other user reads, and no core dump of the
/// daemon's memory.
@Suite struct SecretsTests {
    @Test("A password in fleet.postgresURL is refused, naming the key and where a password goes, without showing it")
    func passwordInURL() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await ConfigurationSources.load(flags: ["fleet.postgresURL": "postgres://pd:hunter2@db/q?sslmode=require"], environment: [:], configFile: nil)
        }
        #expect(error?.key == "fleet.postgresURL")
        #expect(error?.rule.contains("must not hold a password") == true && error?.rule.contains("fleet.postgresPasswordFile") == true, "\(String(describing: error))")
        #expect(error?.description.contains("hunter2") == false)
    }

    @Test("A password file every user may read is refused; 0600 and 0640 are read")
    func passwordFileMode() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/password"
        try "s3cret\n".write(toFile: file, atomically: false, encoding: .utf8)
        var settings = FleetSettings()
        settings.postgresURL = "postgres://pd@db/q?sslmode=require"
        settings.passwordFile = file
        chmod(file, 0o644)
        #expect(throws: ConfigurationError.self) { try settings.address() }
        do {
            _ = try settings.address()
        } catch {
            #expect(error.key == "fleet.postgresPasswordFile" && error.rule.contains("readable by every user (mode 644)"), "\(error)")
        }
        for mode: mode_t in [0o600, 0o640] {
            chmod(file, mode)
            #expect(try settings.address()?.password == "s3cret")
        }
    }

    @Test("A configuration file holding a proxy password is refused while every user may read it")
    func proxyPasswordInAReadableFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/participantd.yaml"
        try "upstream:\n  proxy: http://user:hunter2@proxy.internal:3128\n".write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, 0o644)
        let error = await #expect(throws: ConfigurationError.self) {
            try await ConfigurationSources.load(flags: [:], environment: [:], configFile: file)
        }
        #expect(error?.key == "upstream.proxy" && error?.rule.contains("chmod 0640") == true, "\(String(describing: error))")
        #expect(error?.description.contains("hunter2") == false)
        chmod(file, 0o640)
        #expect(try await ConfigurationSources.load(flags: [:], environment: [:], configFile: file).proxy == "http://user:hunter2@proxy.internal:3128")
    }

    @Test("The real daemon is not dumpable: run as nobody, its /proc files belong to root and its core size limit is 0",
          .enabled(if: getuid() == 0, "acting as a second user needs root"))
    func noCoreDumps() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        let socket = directory.path + "/participantd.sock"
        let copy = try await executableCopy(of: "participantd", in: directory.path)
        let daemon = try ChildProcess("/usr/bin/setpriv", [
            "--reuid=65534", "--regid=65534", "--clear-groups", copy,
            "--socket", socket, "--database", directory.path + "/outbox.sqlite", "--endpoint", "http://127.0.0.1:9",
        ])
        defer { daemon.kill(SIGKILL) }
        let client = DaemonClient(socketPath: socket, timeout: .seconds(5))
        try await eventually(timeout: .seconds(30), "daemon ready") { (try? await client.health()) != nil }
        let status = try String(contentsOfFile: "/proc/\(daemon.pid)/status", encoding: .utf8)
        #expect(status.split(separator: "\n").contains { $0.hasPrefix("Uid:") && $0.contains("65534") }, "the daemon runs as nobody")
        var environ = stat()
        #expect(stat("/proc/\(daemon.pid)/environ", &environ) == 0)
        #expect(environ.st_uid == 0, "a dumpable process's /proc files belong to its own user (\(environ.st_uid))")
        let limits = try String(contentsOfFile: "/proc/\(daemon.pid)/limits", encoding: .utf8)
        let core = limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") }
        #expect(core?.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"], "\(core ?? "")")
    }
}
