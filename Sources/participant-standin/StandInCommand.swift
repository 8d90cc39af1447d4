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

    @Option(help: "Enforce a quota as the service does: 429 ThrottlingException beyond this many requests per second (0: none).")
    var quotaRate: Double = 0

    @Option(help: "The quota's burst (with --quota-rate).")
    var quotaBurst: Int = 15

    @Flag(help: "Close every connection without an answer, as a service that is down.")
    var dropConnections = false

    @Flag(help: "Print a summary line (accepted, throttled, requests) each second that something changed.")
    var summary = false

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
                if dropConnections {
                    .dropConnection
                } else if let refused = refuseConnectionToken, request.bearer == refused {
                    .error(status: 403, code: "AccessDeniedException", message: "The connection is no longer valid")
                } else {
                    .accept
                }
            return latency > .zero ? .delay(latency, then: answer) : answer
        }
        if quotaRate > 0 {
            standIn.setQuota(rate: quotaRate, burst: quotaBurst)
        }
        FileHandle.standardOutput.write(Data("participant-standin listening on \(standIn.endpoint) (POST /participant/event)\n".utf8))
        // Serve until interrupted.
        var last = ""
        while true {
            try await Task.sleep(for: .seconds(summary ? 1 : 3_600))
            guard summary else { continue }
            let line = "summary accepted=\(standIn.acceptedEvents.count) throttled=\(standIn.throttledCount) requests=\(standIn.requests.count)"
            if line != last {
                FileHandle.standardOutput.write(Data("\(WireCoding.formatTimestamp(Date())) \(line)\n".utf8))
                last = line
            }
        }
    }
}
