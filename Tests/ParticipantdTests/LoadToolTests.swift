import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import ParticipantTestSupport
import Testing

/// participant-load, the benchmarks' tool: what it reports must be what happened.
@Suite struct LoadToolTests {
    func load(_ arguments: [String]) async throws -> [String: Any] {
        let (status, output, errors) = try await ChildProcess.run(try BuiltProduct.path("participant-load"), arguments + ["--json"])
        #expect(status == 0, "participant-load failed: \(errors)")
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        return try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(output) \(errors)")
    }

    @Test func submitsThroughTheDaemonAndCountsEveryAnswer() async throws {
        try await TestDaemon.with { daemon in
            let result = try await load([
                "--socket", daemon.configuration.socketPath, "--clients", "4", "--count", "40", "--warmup", "0",
                "--mix", "read=1,delivered=1", "--connections", "5",
            ])
            #expect(result["requests"] as? Int == 40)
            #expect(result["statuses"] as? [String: Int] == ["202": 40])
            // Every answer it counted is an event the daemon stored.
            let health = try await daemon.client.health()
            #expect(health.queue.values.reduce(0, +) == 40)
        }
    }

    @Test("--batch posts N events per request to /v1/events/batch, and counts events stored")
    func batchesThroughTheDaemon() async throws {
        try await TestDaemon.with { daemon in
            let result = try await load([
                "--socket", daemon.configuration.socketPath, "--clients", "2", "--count", "6", "--warmup", "0",
                "--mix", "read=1,typing=1", "--connections", "50", "--batch", "25",
            ])
            #expect(result["requests"] as? Int == 6)
            #expect(result["batch"] as? Int == 25)
            #expect(result["statuses"] as? [String: Int] == ["200": 6])
            #expect(result["refusedEvents"] as? Int == 0)
            let health = try await daemon.client.health()
            #expect(health.queue.values.reduce(0, +) == 150)
        }
    }

    @Test func theBaselineAnswersLikeTheDaemonAndStoresNothing() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/baseline.sock"
        let baseline = try ChildProcess(try BuiltProduct.path("participant-load"), ["baseline", "--socket", socket])
        defer { baseline.kill(SIGTERM) }
        try await eventually(timeout: .seconds(10), "the baseline listens") { FileManager.default.fileExists(atPath: socket) }

        let result = try await load(["--socket", socket, "--clients", "2", "--count", "20", "--warmup", "0"])
        #expect(result["statuses"] as? [String: Int] == ["202": 20])
        // The same decoding and validation as the daemon's, and the same answer.
        let client = RawSocketClient(path: socket)
        let (status, body) = try await client.request(method: "POST", path: "/v1/events", body: #"{"contentType":"text/plain","connectionToken":"c"}"#)
        #expect(status == 400)
        #expect(String(decoding: body, as: UTF8.self).contains("contentType"))
        let (accepted, answer) = try await client.request(method: "POST", path: "/v1/events", body: #"{"contentType":"application/vnd.amazonaws.connect.event.typing","connectionToken":"c","clientToken":"b-1"}"#)
        #expect(accepted == 202)
        let decoded = try WireCoding.decoder().decode(SubmitResponse.self, from: answer)
        #expect(decoded.event.clientToken == "b-1")
        #expect(decoded.event.state == .queued)
    }

    @Test func fsyncProbeMeasuresBothSyncs() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let result = try await load(["fsync", "--dir", directory.path, "--count", "20"])
        #expect((result["fdatasyncP50Micros"] as? Int ?? 0) > 0)
        #expect((result["fsyncP50Micros"] as? Int ?? 0) > 0)
        // It cleans up after itself.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func aMixWithoutWeightsIsRefusedNamingTheOption() async throws {
        let (status, _, errors) = try await ChildProcess.run(try BuiltProduct.path("participant-load"), ["--socket", "/nonexistent", "--mix", "tpying=1"])
        #expect(status != 0)
        #expect(errors.contains("--mix"))
    }
}
