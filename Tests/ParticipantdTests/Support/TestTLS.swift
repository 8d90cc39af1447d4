import Foundation
import ParticipantTestSupport
import NIOSSL

/// A certificate authority made for one test with `openssl`, and server certificates it signs.
struct TestCertificateAuthority {
    let directory: TemporaryDirectory
    /// The CA's certificate (PEM): what `upstream.caFile` names.
    var caFile: String { directory.path + "/ca.pem" }

    init() async throws {
        directory = try TemporaryDirectory()
        try await Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory.path + "/ca.key",
                                "-out", directory.path + "/ca.pem", "-days", "2", "-subj", "/CN=participantd test CA"])
    }

    /// A server certificate for `names` (DNS names), signed by this CA, as a stand-in's TLS configuration.
    func serverTLS(for names: [String], file: String = "server") async throws -> TLSConfiguration {
        let base = directory.path + "/" + file
        try await Self.openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=\(names[0])"])
        try "subjectAltName=\(names.map { "DNS:\($0)" }.joined(separator: ","))\nbasicConstraints=CA:FALSE\n"
            .write(toFile: base + ".ext", atomically: true, encoding: .utf8)
        try await Self.openssl(["x509", "-req", "-in", base + ".csr", "-CA", caFile, "-CAkey", directory.path + "/ca.key",
                                "-CAcreateserial", "-out", base + ".pem", "-days", "2", "-extfile", base + ".ext"])
        return TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(base + ".pem").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: base + ".key", format: .pem))
        )
    }

    func remove() { directory.remove() }

    private static func openssl(_ arguments: [String]) async throws {
        let (status, _, errors) = try await ChildProcess.run("/usr/bin/openssl", arguments)
        guard status == 0 else { throw TimedOut(description: "openssl \(arguments.first ?? "") failed: \(errors)") }
    }
}

/// A real HTTP proxy (Debian's tinyproxy) on 127.0.0.1, with its log, started and stopped by a test.
struct TestProxy {
    let process: ChildProcess
    let port: Int
    let directory: TemporaryDirectory
    var url: String { "http://127.0.0.1:\(port)" }
    var log: String { (try? String(contentsOfFile: directory.path + "/tinyproxy.log", encoding: .utf8)) ?? "" }

    /// - Parameter extra: more configuration lines (`BasicAuth user password`, `ConnectPort 443`).
    static func start(_ extra: [String] = []) async throws -> TestProxy {
        let directory = try TemporaryDirectory()
        // tinyproxy drops to nobody, who must write its log here.
        chmod(directory.path, 0o777)
        for attempt in 0..<20 {
            let port = Int.random(in: 20_000..<60_000)
            let configuration = ([
                "Port \(port)", "Listen 127.0.0.1", "Timeout 30", "LogFile \"\(directory.path)/tinyproxy.log\"", "LogLevel Connect",
                "MaxClients 50", "Allow 127.0.0.1", "User nobody", "Group nogroup",
            ] + extra).joined(separator: "\n") + "\n"
            try configuration.write(toFile: directory.path + "/tinyproxy.conf", atomically: true, encoding: .utf8)
            let process = try ChildProcess("/usr/bin/tinyproxy", ["-d", "-c", directory.path + "/tinyproxy.conf"])
            let proxy = TestProxy(process: process, port: port, directory: directory)
            // Listening, or gone (the port was taken): whichever comes first.
            try await eventually(timeout: .seconds(10), "tinyproxy listening or exited (attempt \(attempt))") {
                proxy.accepts() || !process.isRunning
            }
            if process.isRunning { return proxy }
        }
        throw TimedOut(description: "tinyproxy did not start on any of 20 ports")
    }

    func accepts() -> Bool { FreePort.accepts(port) }

    /// Ends tinyproxy and waits for it. SIGKILL: on SIGTERM it lingered (runs of the suite left
    /// one behind per proxy, as nobody), and nothing of it is needed once the test has read its log.
    func stop() async {
        await process.stop(SIGKILL)
        directory.remove()
    }

    /// Runs `body` with a started proxy, and stops the proxy afterwards, whatever `body` did.
    static func with<T>(_ extra: [String] = [], _ body: (TestProxy) async throws -> T) async throws -> T {
        let proxy = try await start(extra)
        do {
            let result = try await body(proxy)
            await proxy.stop()
            return result
        } catch {
            await proxy.stop()
            throw error
        }
    }
}
