import AsyncHTTPClient
import Benchmark
import Foundation
import Logging
import NIOCore
import ParticipantDaemon
import ParticipantDelivery
import ParticipantOutbox
import ParticipantInput
import ParticipantWire
import Synchronization

// The hot pieces of one event's way through the daemon, each alone: `bench/micro.sh` runs them
// (`swift package benchmark`). Figures and the machine are in BENCHMARKS.md.

let readReceiptBody = Data(
    #"{"contentType":"application/vnd.amazonaws.connect.event.message.read","content":"{\"messageId\":\"a6b1c3d4-0000-4000-8000-000000000001\"}","clientToken":"4f1c2e9a-7d3b-4c5e-9f10-2a3b4c5d6e7f","connectionToken":"QVFJREFIaGJlbmNobWFyay1jb25uZWN0aW9uLXRva2VuLWFzLWxvbmctYXMtYS1yZWFsLW9uZQ"}"#.utf8
)
let sendEventBody = Data(
    #"{"ContentType":"application/vnd.amazonaws.connect.event.typing","ClientToken":"4f1c2e9a-7d3b-4c5e-9f10-2a3b4c5d6e7f"}"#.utf8
)
let serviceAnswer = Data(#"{"Id":"8e5d2f3a-1b4c-4d6e-8f90-a1b2c3d4e5f6","AbsoluteTime":"2026-11-21T12:00:00.123Z"}"#.utf8)

/// An outbox in a temporary folder with its writer running, for the enqueue benchmark.
final class OutboxFixture: Sendable {
    let outbox: Outbox
    let directory: String
    let writer: Task<Void, Never>
    let sequence = Atomic<Int>(0)

    init() throws {
        directory = NSTemporaryDirectory() + "participantd-bench-\(UUID().uuidString)"
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        var limits = OutboxLimits()
        limits.capacity = 100_000_000
        outbox = try Outbox.open(path: directory + "/outbox.sqlite", limits: limits, logger: logger)
        let writer = outbox.writer
        self.writer = Task { try? await writer.run() }
    }

    /// 64 different events, as 64 clients would send them at once.
    func batch() -> [ValidatedEvent] {
        let base = sequence.add(64, ordering: .relaxed).oldValue
        return (base..<base + 64).map { n in
            let body = #"{"contentType":"application/vnd.amazonaws.connect.event.message.read","content":"{\"messageId\":\"m-\#(n)\"}","clientToken":"bench-\#(n)","connectionToken":"bench-connection-\#(n % 10_000)"}"#
            return try! RequestDecoding.daemonRequest(body: Data(body.utf8))
        }
    }

    func stop() {
        writer.cancel()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

nonisolated(unsafe) var fixture: OutboxFixture?

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        warmupIterations: 100,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    Benchmark("RequestDecoding.daemonRequest: POST /v1/events body to a valid event") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try RequestDecoding.daemonRequest(body: readReceiptBody))
        }
    }

    Benchmark("RequestDecoding.sendEventRequest: SendEvent body and bearer to a valid event") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try RequestDecoding.sendEventRequest(body: sendEventBody, bearer: "bench-connection-token"))
        }
    }

    let request = ServiceRequest(
        operation: .sendEvent, contentType: EventContentType.messageRead.rawValue, content: #"{"messageId":"m-1"}"#,
        clientToken: "4f1c2e9a-7d3b-4c5e-9f10-2a3b4c5d6e7f", connectionToken: "bench-connection-token"
    )
    Benchmark("HTTPParticipantService.httpRequest: one SendEvent request built") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(HTTPParticipantService.httpRequest(for: request, endpoint: "https://participant.connect.us-east-1.amazonaws.com", userAgent: "participantd/bench"))
        }
    }

    Benchmark("HTTPParticipantService.classify: the service's 200 answer read") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(HTTPParticipantService.classify(status: 200, headers: ["content-type": "application/json"], body: serviceAnswer))
        }
    }

    Benchmark(
        "Outbox.submit: 64 events at once, one group commit (synchronous=FULL)",
        configuration: .init(metrics: [.wallClock, .cpuTotal, .throughput], warmupIterations: 5, maxDuration: .seconds(5), maxIterations: 5_000),
        closure: { benchmark in
            guard let fixture else { return }
            let batch = fixture.batch()
            benchmark.startMeasurement()
            try await withThrowingTaskGroup(of: SubmitOutcome.self) { group in
                for event in batch {
                    group.addTask { try await fixture.outbox.submit(event) }
                }
                for try await outcome in group {
                    blackHole(outcome)
                }
            }
            benchmark.stopMeasurement()
        },
        setup: { fixture = try OutboxFixture() },
        teardown: {
            fixture?.stop()
            fixture = nil
        }
    )
}
