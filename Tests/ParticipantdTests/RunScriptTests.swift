import Foundation
import ParticipantTestSupport
import Testing

/// The README's first run without AWS: `scripts/run --standin` starts the daemon beside the
/// stand-in service, so one `participantctl send-event --wait` shows an event delivered.
@Suite struct RunScriptTests {
    @Test("scripts/run --standin: an event sent with participantctl reaches the stand-in, whose line is printed; SIGTERM stops both")
    func runWithTheStandIn() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/s.sock"
        let run = try ChildProcess(
            "/bin/bash", [Repository.root + "/scripts/run", "--standin", "--no-build", "--socket", socket, "--database", directory.path + "/outbox.sqlite"]
        )
        defer { Task { await run.stop() } }
        try await eventually(timeout: .seconds(30), "the daemon's socket") { FileManager.default.fileExists(atPath: socket) || !run.isRunning }
        #expect(run.isRunning, "\(run.standardError)")
        #expect(run.standardError.contains("nothing goes to AWS"))
        let (status, output, errors) = try await ChildProcess.run(
            try BuiltProduct.path("participantctl"),
            ["send-event", "--content-type", "application/vnd.amazonaws.connect.event.typing", "--connection-token", "my-connection-token", "--client-token", "first-run", "--wait"],
            environment: ["PARTICIPANTD_SOCKET": socket]
        )
        #expect(status == 0, "\(errors)")
        #expect(output.contains("\"Id\""))
        try await eventually(timeout: .seconds(10), "the stand-in's line") {
            run.standardError.contains("participant-standin: ") && run.standardError.contains("ok application/vnd.amazonaws.connect.event.typing ClientToken=first-run")
        }
        let endpoint = try #require(run.standardError.firstMatch(of: /at (http:\/\/127\.0\.0\.1:\d+)/)?.1)
        run.kill(SIGTERM)
        #expect(try await run.exitStatus(timeout: .seconds(20)) == 0, "\(run.standardError)")
        #expect(run.standardError.contains("participantd stopped"))
        // The stand-in went with it: its port refuses connections.
        let port = try #require(Int(endpoint.split(separator: ":").last ?? ""))
        // (The script's trap stops it; on a loaded machine that may take a moment after the script's exit.)
        let gone = (try? await eventually(timeout: .seconds(10), "the stand-in stopped") { !FreePort.accepts(port) }) != nil
        #expect(gone, "the stand-in still listens on \(endpoint)")
    }
}
