import ArgumentParser
import Foundation
import ParticipantServiceStandIn
import ParticipantWire

@main
struct StandInCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "participant-standin",
        abstract: "A local stand-in for the Participant Service's SendEvent, to watch participantd deliver.",
        discussion: "Start it, then run participantd with --endpoint http://127.0.0.1:PORT. It prints one line per request."
    )

    @Option(help: "The port on 127.0.0.1 to listen on.")
    var port: Int = 8787

    @Option(help: "Milliseconds to wait before each answer.")
    var latencyMs: Int = 0

    @Option(help: "Answer 403 AccessDeniedException to requests with this connection token (X-Amz-Bearer), as for an ended chat.")
    var refuseConnectionToken: String?

    func run() async throws {
        let latency = Duration.milliseconds(latencyMs)
        let standIn = try await ParticipantServiceStandIn.start(port: port) { request in
            let line = [
                WireCoding.formatTimestamp(request.receivedAt),
                request.problem.map { "INVALID (\($0))" } ?? "ok",
                request.contentType ?? "-",
                "ClientToken=\(request.clientToken ?? "-")",
                "Content=\(request.content ?? "-")",
            ].joined(separator: " ")
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
            let answer: ParticipantServiceStandIn.Behavior =
                if let refused = refuseConnectionToken, request.bearer == refused {
                    .error(status: 403, code: "AccessDeniedException", message: "The connection is no longer valid")
                } else {
                    .accept
                }
            return latency > .zero ? .delay(latency, then: answer) : answer
        }
        FileHandle.standardOutput.write(Data("participant-standin listening on \(standIn.endpoint) (POST /participant/event)\n".utf8))
        // Serve until interrupted.
        while true {
            try await Task.sleep(for: .seconds(3_600))
        }
    }
}
