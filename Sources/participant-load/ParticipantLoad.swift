import ArgumentParser
import Foundation
import Logging
import NIOPosix
import ParticipantAPI
import ParticipantClient
import ParticipantOutbox

/// `participant-load`: load for participantd's socket API, and the two measurements the benchmark
/// compares it with (`bench/compare.sh`, BENCHMARKS.md).
@main
struct ParticipantLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "participant-load",
        abstract: "Load and baselines for participantd's benchmarks.",
        subcommands: [Submit.self, Baseline.self, Fsync.self],
        defaultSubcommand: Submit.self
    )
}

/// N keep-alive clients on the Unix socket, each sending its next `POST /v1/events` as soon as the
/// previous answer has arrived (a closed loop), until a count or a duration is reached.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit events over the Unix socket from concurrent keep-alive clients; print the rate and latency percentiles."
    )

    @Option(help: "The daemon's Unix socket.")
    var socket: String

    @Option(help: "Concurrent keep-alive connections, each with one request at a time.")
    var clients = 64

    @Option(help: "Requests in all (after the warm-up). Ignored with --seconds.")
    var count = 200_000

    @Option(help: "Run for this many seconds (after the warm-up) instead of a count.")
    var seconds: Double?

    @Option(help: "Seconds of load before measuring starts; answers in it are not counted.")
    var warmup = 1.0

    @Option(help: "Content types and their weights: typing, delivered, read, acknowledged.")
    var mix = "read=4,delivered=4,typing=2"

    @Option(help: "Distinct connection tokens the events are spread over.")
    var connections = 10_000

    @Option(help: "Events per request: 1 posts each to /v1/events, more posts batches to /v1/events/batch (rates then also in events/s).")
    var batch = 1

    @Option(help: "Event loop threads for the clients.")
    var threads = 1

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func validate() throws {
        guard clients >= 1 else { throw ValidationError("--clients must be at least 1") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard (1...10_000).contains(batch) else { throw ValidationError("--batch must be from 1 to 10000") }
        if let seconds, seconds <= 0 { throw ValidationError("--seconds must be more than 0") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
        _ = try RequestMix(mix)
    }

    func run() async throws {
        let plan = LoadPlan(
            socketPath: socket, clients: clients,
            stop: seconds.map { .after(seconds: $0) } ?? .count(count),
            warmupSeconds: warmup, mix: try RequestMix(mix), connections: connections, batch: batch
        )
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let result: LoadResult
        do {
            result = try await LoadRun(plan: plan, group: group).run()
            try await group.shutdownGracefully()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        print(json ? result.jsonLine() : result.text())
        if result.failedConnections > 0 || result.refusedEvents > 0 || result.statuses.keys.contains(where: { !(200..<300).contains($0) }) {
            throw ExitCode(1)
        }
    }
}

/// The socket API's submit route with the outbox taken out: the same server answering the same
/// requests without touching a database.
struct Baseline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve POST /v1/events like participantd, but store nothing (the benchmark's baseline)."
    )

    enum Server: String, ExpressibleByArgument, CaseIterable {
        /// The daemon's own: Hummingbird, its router and the socket API's middleware.
        case hummingbird
        /// A plain SwiftNIO HTTP/1.1 pipeline with one handler, to measure what Hummingbird costs.
        case nio
    }

    @Option(help: "The Unix socket to listen on.")
    var socket: String

    @Option(help: "The HTTP server: hummingbird (the daemon's), or nio (a plain SwiftNIO pipeline, the same decoding and answer).")
    var server: Server = .hummingbird

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .notice
            return handler
        }
        let logger = Logger(label: "participant-load")
        switch server {
        case .hummingbird: try await BaselineAPI.run(socketPath: socket, logger: logger)
        case .nio: try await PlainNIOBaseline.run(socketPath: socket, maxBodyBytes: APIConfiguration().maxBodyBytes, logger: logger)
        }
    }
}

/// The disk's own commit latency: how long one small write and its sync take in `--dir`.
struct Fsync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the latency of a 4 KiB write followed by fdatasync and by fsync, in a folder on the disk under test."
    )

    @Option(help: "A folder on the disk the outbox lives on.")
    var dir: String

    @Option(help: "Syncs of each kind.")
    var count = 2_000

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func run() throws {
        let result = try FsyncProbe.measure(directory: dir, count: count)
        print(json ? result.jsonLine() : result.text())
    }
}
