import ArgumentParser
import Foundation
import ParticipantServiceStandIn
import ParticipantWire
import Synchronization

@main
struct StandInCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "participant-standin",
        abstract: "A local stand-in for the Participant Service (SendEvent, SendMessage, DisconnectParticipant, CreateParticipantConnection), to watch participantd deliver.",
        discussion: """
            Start it, then run participantd with --endpoint http://127.0.0.1:PORT. It prints one line per request. \
            GET /standin/report answers what it saw as JSON; POST /standin/end-participant (body: a participant \
            token) and /standin/end-chat (body: a connection token) end a chat, as a customer leaving does.
            """
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

    @Option(help: "DisconnectParticipant's quota: 429 beyond this many requests per second (0: none; the service's is 3, burst 5).")
    var disconnectQuotaRate: Double = 0

    @Option(help: "DisconnectParticipant's burst (with --disconnect-quota-rate).")
    var disconnectQuotaBurst: Int = 5

    @Option(help: "CreateParticipantConnection's quota: 429 beyond this many requests per second (0: none; the service's is 6, burst 9).")
    var connectionQuotaRate: Double = 0

    @Option(help: "CreateParticipantConnection's burst (with --connection-quota-rate).")
    var connectionQuotaBurst: Int = 9

    @Option(help: "How long the connection tokens CreateParticipantConnection gives live, in seconds (the service's: a day).")
    var connectionLifetimeSeconds: Double = 86_400

    @Option(help: "Answer this percentage of valid requests with 500 InternalServerException (drawn from --seed).")
    var errorPercent: Double = 0

    @Option(help: "Close the connection without an answer for this percentage of valid requests (drawn from --seed).")
    var dropPercent: Double = 0

    @Option(help: "The seed of the faults drawn.")
    var seed: UInt64 = 1

    @Flag(help: "Print a summary line (accepted, throttled, requests) each second that something changed.")
    var summary = false

    func run() async throws {
        let latency = Duration.milliseconds(latencyMs)
        let faults = FaultDraw(seed: seed)
        let (errorShare, dropShare) = (errorPercent / 100, dropPercent / 100)
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
                    switch faults.next() {
                    case ..<errorShare: .error(status: 500, code: "InternalServerException", message: "injected")
                    case ..<(errorShare + dropShare): .dropConnection
                    default: .accept
                    }
                }
            return latency > .zero ? .delay(latency, then: answer) : answer
        }
        if quotaRate > 0 {
            standIn.setQuota(rate: quotaRate, burst: quotaBurst)
        }
        if disconnectQuotaRate > 0 {
            standIn.setDisconnectQuota(rate: disconnectQuotaRate, burst: disconnectQuotaBurst)
        }
        if connectionQuotaRate > 0 {
            standIn.setConnectionQuota(rate: connectionQuotaRate, burst: connectionQuotaBurst)
        }
        standIn.setConnectionLifetime(.milliseconds(Int64(connectionLifetimeSeconds * 1000)))
        FileHandle.standardOutput.write(Data("participant-standin listening on \(standIn.endpoint) (POST /participant/event, /message, /disconnect, /connection)\n".utf8))
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

/// Faults drawn from a seed (SplitMix64), so that a benchmark's run can be repeated.
final class FaultDraw: Sendable {
    private let state: Mutex<UInt64>

    init(seed: UInt64) {
        state = Mutex(seed)
    }

    /// A number in 0..<1.
    func next() -> Double {
        let value = state.withLock { state -> UInt64 in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return Double(value >> 11) / Double(1 << 53)
    }
}
