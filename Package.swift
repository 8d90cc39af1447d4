// swift-tools-version: 6.2
import Foundation
import PackageDescription

/// The version the binaries report (`--version`, `GET /v1/health`, the User-Agent): PARTICIPANTD_VERSION,
/// which scripts/build-release (so scripts/install and scripts/package) sets from scripts/version (a
/// tag, or the commit). Other builds say `0.1.0+dev`: SwiftPM keeps a read manifest until this file
/// or the environment changes, so a version read from git here would go stale with every commit.
let repositoryVersion = Context.environment["PARTICIPANTD_VERSION"].flatMap { $0.isEmpty ? nil : $0 } ?? "0.1.0+dev"

let package = Package(
    name: "participantd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "participantd", targets: ["participantd"]),
        .executable(name: "participantctl", targets: ["participantctl"]),
        .executable(name: "participant-load", targets: ["participant-load"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(
            url: "https://github.com/apple/swift-configuration.git", from: "1.4.0",
            // Not the default trait JSON: its provider links Foundation's JSONSerialization (no
            // JSON configuration is read).
            traits: ["YAML", "CommandLineArguments"]
        ),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams.git", "5.4.0"..<"7.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    // The layers, each a module, so that an import a layer should not make does not compile.
    // Every arrow points down; one event goes socket -> API -> Input -> Outbox -> Delivery -> service.
    //
    //   ParticipantVersion   (C) the version string, set from repositoryVersion above
    //   ParticipantWire      wire types shared by the daemon and participantctl; no behaviour
    //   ParticipantInput     <- Wire: pure decoding and validation of requests (fuzzed)
    //   ParticipantOutbox    <- Input: the SQLite outbox, GRDB and all SQL; no HTTP
    //   ParticipantDelivery  <- Outbox: the sender, its decisions, pacing, outages, the upstream client
    //   ParticipantFleet     <- Delivery: one quota per Connect instance shared by hosts, in PostgreSQL
    //   ParticipantAPI       <- Outbox: the Hummingbird routes; delivery only through its DeliveryControl protocol
    //   ParticipantDaemon    <- API, Fleet: configuration, logging, metrics, systemd, the listeners, DaemonAssembly
    //   ParticipantClient    <- Wire: the daemon's client and participantctl's send-event input, beside the rest
    //
    // The executables are wiring only: participantd <- Daemon, participantctl <- Client.
    targets: [
        .target(
            name: "ParticipantVersion",
            cSettings: [.define("PARTICIPANTD_VERSION", to: "\"\(repositoryVersion)\"")]
        ),
        .target(name: "ParticipantWire", dependencies: ["ParticipantVersion"]),
        // prctl(2) for the daemon's process (variadic in C, so not callable from Swift).
        .target(name: "CParticipantProcess"),
        .target(name: "ParticipantInput", dependencies: ["ParticipantWire"]),
        .target(
            name: "ParticipantOutbox",
            dependencies: [
                "ParticipantInput",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's own API, beneath GRDB, for the writer's hottest statements (DirectStatement).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ParticipantDelivery",
            dependencies: [
                "ParticipantOutbox",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ParticipantFleet",
            dependencies: [
                "ParticipantDelivery",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ParticipantAPI",
            dependencies: [
                "ParticipantOutbox",
                "ParticipantInput",
                "ParticipantWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ParticipantDaemon",
            dependencies: [
                "CParticipantProcess",
                "ParticipantAPI",
                "ParticipantFleet",
                "ParticipantDelivery",
                "ParticipantOutbox",
                "ParticipantWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "ParticipantClient",
            dependencies: [
                "ParticipantWire",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // A stand-in for the Amazon Connect Participant Service: real HTTP on 127.0.0.1, for tests and demos.
        .target(
            name: "ParticipantServiceStandIn",
            dependencies: [
                "ParticipantWire",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "participantd",
            dependencies: [
                "ParticipantDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "participantctl",
            dependencies: [
                "ParticipantClient",
                "ParticipantWire",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "participant-standin",
            dependencies: [
                "ParticipantServiceStandIn",
                "ParticipantWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The benchmarks' load tool and baselines (`bench/compare.sh`); not used by the daemon.
        .executableTarget(
            name: "participant-load",
            dependencies: [
                "ParticipantAPI",
                "ParticipantClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Tests by layer: one target per module, each depending on its module and the layers under
        // it only; the whole daemon (in process or as a child process) is tested in ParticipantdTests.
        .target(
            name: "ParticipantTestSupport",
            dependencies: [
                "ParticipantOutbox", "ParticipantInput", "ParticipantWire",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ParticipantTestSupport"
        ),
        .testTarget(
            name: "ParticipantInputTests",
            dependencies: ["ParticipantInput", "ParticipantWire", "ParticipantTestSupport"]
        ),
        .testTarget(
            name: "ParticipantOutboxTests",
            dependencies: [
                "ParticipantOutbox", "ParticipantInput", "ParticipantWire", "ParticipantTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ParticipantDeliveryTests",
            dependencies: [
                "ParticipantDelivery", "ParticipantOutbox", "ParticipantInput", "ParticipantWire", "ParticipantTestSupport",
                "ParticipantServiceStandIn",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ParticipantAPITests",
            dependencies: [
                "ParticipantAPI", "ParticipantOutbox", "ParticipantInput", "ParticipantWire", "ParticipantTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "ParticipantDaemonTests",
            dependencies: [
                "ParticipantDaemon", "ParticipantAPI", "ParticipantDelivery", "ParticipantFleet", "ParticipantOutbox",
                "ParticipantWire", "ParticipantTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ParticipantClientTests",
            dependencies: ["ParticipantClient", "ParticipantWire", "ParticipantTestSupport"]
        ),
        .testTarget(
            name: "ParticipantdTests",
            dependencies: [
                "ParticipantDaemon",
                "ParticipantAPI",
                "ParticipantDelivery",
                "ParticipantOutbox",
                "ParticipantClient",
                "ParticipantWire",
                "ParticipantInput",
                "ParticipantServiceStandIn",
                "ParticipantFleet",
                "ParticipantTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer target over request decoding (`scripts/fuzz`). Only declared when asked for: it has
// no `main` of its own (libFuzzer's comes with `-sanitize=fuzzer`), so a plain build cannot link it.
if ProcessInfo.processInfo.environment["PARTICIPANTD_FUZZ"] == "1" {
    package.targets.append(
        .executableTarget(
            name: "participant-fuzz",
            dependencies: ["ParticipantInput"],
            path: "Fuzz/participant-fuzz"
        )
    )
}

// Micro-benchmarks (ordo-one/benchmark) of the hot pieces: `bench/micro.sh`, which sets
// PARTICIPANTD_BENCHMARKS=1. Only declared when asked for, so the test suite's build stays lean.
if ProcessInfo.processInfo.environment["PARTICIPANTD_BENCHMARKS"] == "1" {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"])
    )
    package.targets.append(
        .executableTarget(
            name: "ParticipantBenchmarks",
            dependencies: [
                "ParticipantDaemon",
                "ParticipantDelivery",
                "ParticipantOutbox",
                "ParticipantInput",
                "ParticipantWire",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/ParticipantBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}
