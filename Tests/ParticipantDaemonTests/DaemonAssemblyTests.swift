import Foundation
import Logging
@testable import ParticipantDaemon
import ParticipantAPI
import ServiceLifecycleTestKit
import Testing
import ParticipantTestSupport

/// The composition root: the parts built by one function, and the group's order (the start order;
/// reversed, the stop order).
@Suite struct DaemonAssemblyTests {
    func configuration(in directory: TemporaryDirectory) -> DaemonConfiguration {
        var configuration = DaemonConfiguration()
        configuration.socketPath = directory.path + "/participantd.sock"
        configuration.databasePath = directory.path + "/outbox.sqlite"
        configuration.endpoint = "http://127.0.0.1:9"
        configuration.awsListen = ListenAddress(host: "127.0.0.1", port: 0)
        configuration.metricsListen = ListenAddress(host: "127.0.0.1", port: 0)
        return configuration
    }

    @Test("The group stops supervision first, then the listeners, the senders, the outbox, and the HTTP clients last")
    func stopOrder() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let daemon = try await DaemonAssembly.assemble(
            configuration: configuration(in: directory), shutdownSignals: [], environment: [:],
            logSettings: nil, reload: { throw CancellationError() }, logger: Logger(label: "test")
        )
        let order = daemon.serviceOrder
        func position(_ name: String) throws -> Int { try #require(order.firstIndex { $0.contains(name) }, "\(name) in \(order)") }
        #expect(try position("HTTPClientShutdown") == 0)
        #expect(try position("OutboxWriter") == 1)
        #expect(try position("OutboxJanitor") == 2)
        #expect(try position("ActivitySummary") == 3, "stopped after the senders and the listeners: its last line counts their last items")
        #expect(try position("InstanceSenders") == 4)
        #expect(try position("ConfigurationReloader") == order.count - 2)
        #expect(try position("SystemdSupervision") == order.count - 1)
        #expect(order.count == 5 + 3 + 2, "three listeners between the senders and the reloader: \(order)")
        // What is assembled must be run: it stops, HTTP clients included, on a graceful shutdown.
        try await testGracefulShutdown { trigger in
            async let running: Void = daemon.run()
            try await eventually(timeout: .seconds(30), "the socket listening") {
                FileManager.default.fileExists(atPath: directory.path + "/participantd.sock")
            }
            trigger.triggerGracefulShutdown()
            try await running
        }
    }

    @Test("In a fleet, the fleet's quota stops after the senders and before the outbox")
    func fleetStopsAfterTheSenders() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var configuration = configuration(in: directory)
        configuration.fleet.postgresURL = "postgres://participantd@127.0.0.1:9/participantd?sslmode=disable"
        let daemon = try await DaemonAssembly.assemble(
            configuration: configuration, shutdownSignals: [], environment: [:],
            logSettings: nil, reload: nil, logger: Logger(label: "test")
        )
        let order = daemon.serviceOrder
        let fleet = try #require(order.firstIndex { $0.contains("FleetQuota") })
        let senders = try #require(order.firstIndex { $0.contains("InstanceSenders") })
        let writer = try #require(order.firstIndex { $0.contains("OutboxWriter") })
        #expect(writer < fleet && fleet < senders, "\(order)")
        try await testGracefulShutdown { trigger in
            async let running: Void = daemon.run()
            trigger.triggerGracefulShutdown()
            try await running
        }
    }
}
