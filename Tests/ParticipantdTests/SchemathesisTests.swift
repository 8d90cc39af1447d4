import Foundation
import ParticipantTestSupport
import Testing

/// schemathesis (PyPI) generates requests from `openapi/participantd.openapi.json` and sends
/// them to a live daemon on its socket (through socat: schemathesis speaks TCP): no answer may
/// be a 5xx, and every answer must match the description (status, content type, headers, body).
@Suite struct SchemathesisTests {
    /// `st` on PATH (scripts/ensure-sdk-clients installs it; a user install lives in ~/.local/bin).
    static func schemathesis() throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":" + NSHomeDirectory() + "/.local/bin"
        return try #require(path.split(separator: ":").map { "\($0)/st" }.first { FileManager.default.isExecutableFile(atPath: $0) },
                            "schemathesis (st) is not installed: scripts/ensure-sdk-clients installs it")
    }

    @Test("schemathesis against the socket: no 5xx, every answer as the description says")
    func fuzzTheSocketAPI() async throws {
        let st = try Self.schemathesis()
        try await TestDaemon.with { daemon in
            var bridge: ChildProcess?
            var port = 0
            // socat listens on a free port of 127.0.0.1 and passes each connection to the socket
            // (a port taken in between: another is tried).
            for _ in 0..<5 {
                port = try FreePort.next()
                let started = try ChildProcess("/usr/bin/socat", [
                    "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork", "UNIX-CONNECT:\(daemon.configuration.socketPath)",
                ])
                try await eventually(timeout: .seconds(5), "socat listens") { FreePort.accepts(port) || !started.isRunning }
                if started.isRunning { bridge = started; break }
            }
            let socat = try #require(bridge, "socat did not start")
            defer { Task { await socat.stop() } }
            // Run in a folder of its own: schemathesis keeps a cache (.schemathesis/) where it runs.
            let work = try TemporaryDirectory()
            defer { work.remove() }
            let (status, output, errors) = try await ChildProcess.run("/bin/sh", [
                "-c", "cd \"$0\" && exec \"$@\"", work.path, st,
                "run", Repository.root + "/openapi/participantd.openapi.json", "--url", "http://127.0.0.1:\(port)",
                "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
                "--max-examples", "25", "--seed", "20261207", "--no-color",
            ], timeout: .seconds(300))  // about 50 s within the whole suite on 2 cores; more with other builds beside it
            // The figures, for the log: "N generated, N passed" (and failed, if any).
            let summary = output.firstMatch(of: /(\d+) generated, [^\n]*/).map { String($0.0) } ?? "(no summary)"
            print("schemathesis: \(summary)")
            #expect(status == 0, "\(output.suffix(6_000))\(errors.suffix(2_000))")
            let generated = Int(output.firstMatch(of: /(\d+) generated/)?.1 ?? "0") ?? 0
            #expect(generated >= 500, "\(summary)")
        }
    }
}
