import Foundation
import ParticipantTestSupport
import Glibc

/// A real PostgreSQL server of the test's own: `initdb` in a temporary folder, a free port on
/// 127.0.0.1, password authentication; stopped and removed by ``remove()``. As root (CI), the
/// server runs as the `postgres` user that Debian's package creates (PostgreSQL refuses root).
///
/// The server is this test's child process (`postgres` itself, not `pg_ctl start`, whose
/// postmaster would outlive it and hold its output pipes), stopped by a signal.
final class TestPostgres: Sendable {
    let directory: String
    /// Chosen free; chosen again when another process took it before the server bound it.
    var port: Int { chosenPort.value }
    private let chosenPort: Locked<Int>
    let user = "participantd"
    let password: String
    let passwordFile: String
    private let bin: String
    private let server = Locked<ChildProcess?>(nil)
    /// TLS only: a self-signed certificate, and `hostssl` alone in pg_hba.conf.
    let tls: Bool

    init(directory: String, port: Int, password: String, passwordFile: String, bin: String, tls: Bool) {
        self.tls = tls
        self.directory = directory
        self.chosenPort = Locked(port)
        self.password = password
        self.passwordFile = passwordFile
        self.bin = bin
    }

    var url: String { url(sslmode: "disable") }
    /// TLS only: the server's self-signed certificate (PEM), for `fleet.postgresCAFile`.
    var certificateFile: String { directory + "/server.pem" }

    func url(sslmode: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/postgres?sslmode=\(sslmode)" }

    /// - Parameter tls: accept only TLS connections (a self-signed certificate for 127.0.0.1).
    static func start(tls: Bool = false) async throws -> TestPostgres {
        let bins = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = bins.sorted().last(where: { FileManager.default.fileExists(atPath: "/usr/lib/postgresql/\($0)/bin/initdb") }) else {
            throw TimedOut(description: "PostgreSQL's server is not installed (scripts/ensure-test-tools installs postgresql)")
        }
        let bin = "/usr/lib/postgresql/\(version)/bin"
        let directory = "/tmp/pg-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let password = "pw-" + UUID().uuidString
        let passwordFile = directory + "/password"
        try password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        // The daemon refuses a password file every user may read.
        chmod(passwordFile, 0o600)
        let server = TestPostgres(directory: directory, port: try FreePort.next(), password: password, passwordFile: passwordFile, bin: bin, tls: tls)
        if tls {
            let (status, _, errors) = try await ChildProcess.run("/usr/bin/env", [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/server.key", "-out", directory + "/server.pem",
                "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ])
            guard status == 0 else { throw TimedOut(description: "openssl failed: \(errors)") }
            chmod(directory + "/server.key", 0o600)
        }
        if getuid() == 0 {
            _ = try await ChildProcess.run("/bin/chown", ["-R", "postgres:postgres", directory])
        }
        try await server.run("initdb", ["-D", directory + "/data", "-U", "participantd", "--auth=scram-sha-256", "--pwfile=" + passwordFile, "-E", "UTF8", "--no-sync"])
        if tls {
            try "hostssl all all 127.0.0.1/32 scram-sha-256\nlocal all all scram-sha-256\n"
                .write(toFile: directory + "/data/pg_hba.conf", atomically: false, encoding: .utf8)
        }
        // Between FreePort.next() and the server's bind another process may take the port.
        for attempt in 1... {
            do {
                try await server.startServer()
                break
            } catch let error as PortTaken where attempt < 5 {
                _ = error
                server.chosenPort.withLock { $0 = (try? FreePort.next()) ?? $0 }
            }
        }
        return server
    }

    /// The server could not bind its port: another process has it.
    struct PortTaken: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts the server (again, after ``stopServer()``), waiting until it accepts connections.
    func startServer() async throws {
        var options = ["-D", directory + "/data", "-p", "\(port)", "-k", directory, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        if tls {
            options += ["-c", "ssl=on", "-c", "ssl_cert_file=\(directory)/server.pem", "-c", "ssl_key_file=\(directory)/server.key"]
        }
        let (executable, arguments) = command("postgres", options)
        let child = try ChildProcess(executable, arguments)
        server.withLock { $0 = child }
        try await eventually(timeout: .seconds(30), "PostgreSQL accepts connections") {
            guard child.isRunning else {
                let errors = child.standardError
                if errors.contains("Address already in use") { throw PortTaken(description: "postgres exited: \(errors)") }
                throw TimedOut(description: "postgres exited: \(errors)")
            }
            let (executable, arguments) = command("pg_isready", ["-h", "127.0.0.1", "-p", "\(port)"])
            return try await ChildProcess.run(executable, arguments).0 == 0
        }
    }

    /// Stops the server at once (SIGQUIT: immediate shutdown, as a crash or a cut network looks
    /// to its clients).
    func stopServer() async throws {
        guard let child = server.withLock({ $0 }) else { return }
        child.kill(SIGQUIT)
        _ = try await child.exitStatus()
        server.withLock { $0 = nil }
    }

    /// Freezes the server: SIGSTOP to it and to every process it started. Connections stay open
    /// and nothing answers on them, as a hung host or a cut network without a reset looks to its
    /// clients. ``thaw()`` lets it go on.
    func freeze() async throws { try await signalEveryProcess("STOP") }

    func thaw() async throws { try await signalEveryProcess("CONT") }

    /// `name` (STOP, CONT) to the server first, so that it starts no process meanwhile, then to its children.
    private func signalEveryProcess(_ name: String) async throws {
        guard let child = server.withLock({ $0 }) else { return }
        child.kill(name == "STOP" ? SIGSTOP : SIGCONT)
        // pkill exits 1 when the server has no child: that is not an error.
        let (status, _, errors) = try await ChildProcess.run("/usr/bin/pkill", ["-\(name)", "-P", "\(child.pid)"])
        guard status <= 1 else { throw TimedOut(description: "pkill -\(name) failed: \(errors)") }
    }

    func remove() async {
        try? await stopServer()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A PostgreSQL program, as the `postgres` user when this process is root.
    private func command(_ tool: String, _ arguments: [String]) -> (String, [String]) {
        getuid() == 0
            ? ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", bin + "/" + tool] + arguments)
            : (bin + "/" + tool, arguments)
    }

    private func run(_ tool: String, _ arguments: [String]) async throws {
        let (executable, arguments) = command(tool, arguments)
        let (status, output, errors) = try await ChildProcess.run(executable, arguments)
        guard status == 0 else {
            throw TimedOut(description: "\(tool) failed (\(status)): \(output)\(errors)")
        }
    }
}
