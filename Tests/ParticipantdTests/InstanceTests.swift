import AsyncHTTPClient
import Foundation
import GRDB
import ParticipantTestSupport
import Testing
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantInput
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantWire

/// Several Connect instances on one daemon: each event goes to its instance's service, with its
/// own pacing and outage detection.
@Suite struct InstanceTests {
    static let typing = EventContentType.typing.rawValue
    static let read = EventContentType.messageRead.rawValue

    /// A daemon whose `default` instance is `daemon.standIn` and whose instance `b` is `other`,
    /// with `aws.listen` on a free port (`endpoint`).
    func withTwoInstances(
        defaultBehavior: @escaping @Sendable (ParticipantServiceStandIn.ReceivedRequest) -> ParticipantServiceStandIn.Behavior = { _ in .accept },
        _ body: (TestDaemon, ParticipantServiceStandIn, String) async throws -> Void
    ) async throws {
        let other = try await ParticipantServiceStandIn.start(behavior: { _ in .accept })
        do {
            try await TestDaemon.with(behavior: defaultBehavior, configure: { configuration in
                var b = InstanceConfiguration(name: "b")
                b.endpoint = other.endpoint
                b.quota = QuotaPacer.Configuration(rate: 0, burst: 1)
                configuration.instances = [b]
                configuration.awsListen = ListenAddress(host: "127.0.0.1", port: 0)
                configuration.api.deliveryWait = TestDaemon.patientDeliveryWait
            }) { daemon in
                let port = try await daemon.awsListenPort()
                try await body(daemon, other, "http://127.0.0.1:\(port)")
            }
        } catch {
            try? await other.stop()
            throw error
        }
        try await other.stop()
    }

    @Test("An event goes to its instance's service; an unknown instance is a 400 naming the configured ones; the instance shows in records, list and stats")
    func eventsGoToTheirInstance() async throws {
        try await withTwoInstances { daemon, other, _ in
            let client = daemon.client
            let toB = try await client.submit(EventSubmission(contentType: Self.typing, clientToken: "to-b", connectionToken: "conn", instance: "b"))
            #expect(toB.event.instance == "b")
            let toDefault = try await client.submit(EventSubmission(contentType: Self.typing, clientToken: "to-default", connectionToken: "conn"))
            #expect(toDefault.event.instance == "default")
            _ = try await daemon.waitForEvent("to-b") { $0.state == .sent }
            _ = try await daemon.waitForEvent("to-default") { $0.state == .sent }
            #expect(other.acceptedEvents.map(\.clientToken) == ["to-b"])
            #expect(daemon.standIn.acceptedEvents.map(\.clientToken) == ["to-default"])

            // Unknown: refused, naming the field and the instances; nothing stored.
            do {
                _ = try await client.submit(EventSubmission(contentType: Self.typing, clientToken: "to-c", connectionToken: "conn", instance: "c"))
                Issue.record("an unknown instance was accepted")
            } catch DaemonClientError.api(let status, let body) {
                #expect(status == 400)
                #expect(body.message.contains("instance") && body.message.contains("default, b"), "\(body.message)")
            }
            #expect(try await client.list(limit: 100).map(\.clientToken).contains("to-c") == false)

            // The same ClientToken for another instance is a mismatch naming the instance.
            do {
                _ = try await client.submit(EventSubmission(contentType: Self.typing, clientToken: "to-b", connectionToken: "conn"))
                Issue.record("the same ClientToken for another instance was accepted")
            } catch DaemonClientError.api(let status, let body) {
                #expect(status == 409)
                #expect(body.message.contains("instance (b)"), "\(body.message)")
            }

            #expect(try await client.list(instance: "b").map(\.clientToken) == ["to-b"])
            let stats = try await client.stats()
            #expect(stats.instances?["b"]?.counts["sent"] == 1)
            #expect(stats.instances?["default"]?.counts["sent"] == 1)

            // A batch: the unknown instance fails alone, named by its index.
            let batch = try await client.submitBatch([
                EventSubmission(contentType: Self.typing, clientToken: "batch-b", connectionToken: "conn2", instance: "b"),
                EventSubmission(contentType: Self.typing, clientToken: "batch-x", connectionToken: "conn2", instance: "x"),
            ])
            #expect(batch.results.map(\.status) == [202, 400])
        }
    }

    @Test("AWS SDKs reach a named instance by an endpoint URL ending /instances/NAME: aws CLI and boto3, send-event, send-message and disconnect-participant")
    func sdkPathPrefix() async throws {
        try await withTwoInstances { daemon, other, endpoint in
            let common = ["aws", "connectparticipant", "send-event", "--region", "us-east-1", "--output", "json", "--no-sign-request"]
            let (status, _, errors) = try await ChildProcess.run("/usr/bin/env", common + [
                "--endpoint-url", endpoint + "/instances/b", "--connection-token", "cli-conn", "--content-type", Self.typing, "--client-token", "cli-b",
            ], environment: SendEventAPITests.awsEnvironment)
            #expect(status == 0, "\(errors)")
            #expect(other.acceptedEvents.map(\.clientToken) == ["cli-b"])

            let (unknown, _, unknownErrors) = try await ChildProcess.run("/usr/bin/env", common + [
                "--endpoint-url", endpoint + "/instances/nope", "--connection-token", "cli-conn", "--content-type", Self.typing,
            ], environment: SendEventAPITests.awsEnvironment)
            #expect(unknown == 254 || unknown == 255)
            #expect(unknownErrors.contains("ValidationException") && unknownErrors.contains("default, b"), "\(unknownErrors)")

            let script = """
                import boto3, botocore, sys
                from botocore.config import Config
                client = boto3.client("connectparticipant", region_name="us-east-1", endpoint_url=sys.argv[1],
                                      config=Config(signature_version=botocore.UNSIGNED))
                answer = client.send_event(ConnectionToken="boto-conn", ContentType="\(Self.typing)", ClientToken="boto-b")
                print(answer["Id"])
                message = client.send_message(ConnectionToken="boto-conn", ContentType="text/markdown", Content="**boto**", ClientToken="boto-m")
                print(message["Id"], message["MessageMetadata"]["MessageProcessingStatus"])
                print(client.disconnect_participant(ConnectionToken="boto-conn", ClientToken="boto-bye")["ResponseMetadata"]["HTTPStatusCode"])
                """
            let (botoStatus, botoOutput, botoErrors) = try await ChildProcess.run("/usr/bin/env", ["python3", "-c", script, endpoint + "/instances/b"], environment: SendEventAPITests.awsEnvironment)
            #expect(botoStatus == 0, "\(botoErrors)")
            #expect(Set(other.acceptedEvents.map(\.clientToken)) == ["cli-b", "boto-b"])
            #expect(botoOutput.contains(other.acceptedEvents.first { $0.clientToken == "boto-b" }?.id ?? "missing"))
            #expect(daemon.standIn.acceptedEvents.isEmpty)
            let botoMessage = try #require(other.acceptedMessages.first { $0.clientToken == "boto-m" })
            #expect(botoOutput.contains("\(botoMessage.id) PROCESSING"), "\(botoOutput)")

            let (messageStatus, messageOutput, messageErrors) = try await ChildProcess.run("/usr/bin/env", [
                "aws", "connectparticipant", "send-message", "--region", "us-east-1", "--output", "json", "--no-sign-request",
                "--endpoint-url", endpoint + "/instances/b", "--connection-token", "cli-conn", "--content-type", "text/plain",
                "--content", "from the aws CLI", "--client-token", "cli-m",
            ], environment: SendEventAPITests.awsEnvironment)
            #expect(messageStatus == 0, "\(messageErrors)")
            let cliMessage = try #require(other.acceptedMessages.first { $0.clientToken == "cli-m" })
            #expect(cliMessage.content == "from the aws CLI")
            let printed = try JSONDecoder().decode(SendMessageOutput.self, from: Data(messageOutput.utf8))
            #expect(printed.id == cliMessage.id && printed.messageMetadata?.messageProcessingStatus == "PROCESSING")
            #expect(daemon.standIn.acceptedMessages.isEmpty)

            let (disconnectStatus, disconnectOutput, disconnectErrors) = try await ChildProcess.run("/usr/bin/env", [
                "aws", "connectparticipant", "disconnect-participant", "--region", "us-east-1", "--output", "json", "--no-sign-request",
                "--endpoint-url", endpoint + "/instances/b", "--connection-token", "cli-conn", "--client-token", "cli-bye",
            ], environment: SendEventAPITests.awsEnvironment)
            #expect(disconnectStatus == 0, "\(disconnectErrors)")
            #expect(disconnectOutput.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || disconnectOutput.contains("{}"), "\(disconnectOutput)")
            #expect(Set(other.disconnects.map(\.clientToken)) == ["boto-bye", "cli-bye"])
            #expect(botoOutput.hasSuffix("200\n"), "\(botoOutput)")
        }
    }

    @Test("An outage on one instance does not delay another's events, and health names the instance")
    func outageStaysWithItsInstance() async throws {
        try await withTwoInstances(defaultBehavior: { _ in .dropConnection }) { daemon, other, _ in
            let client = daemon.client
            for index in 0..<50 {
                _ = try await client.submit(EventSubmission(contentType: Self.read, content: receipt("m\(index)"), clientToken: "down-\(index)", connectionToken: "down-\(index)"))
            }
            try await eventually(timeout: .seconds(20), "the default instance's outage is detected") {
                try await client.health().problems.contains { $0.hasPrefix("instance default:") }
            }
            for index in 0..<20 {
                _ = try await client.submit(EventSubmission(contentType: Self.read, content: receipt("b\(index)"), clientToken: "up-\(index)", connectionToken: "up-\(index)", instance: "b"))
            }
            try await eventually(timeout: .seconds(10), "every event of b is sent") {
                other.acceptedEvents.count == 20
            }
            #expect(try await client.health().problems.allSatisfy { !$0.hasPrefix("instance b:") })
            #expect(daemon.standIn.acceptedEvents.isEmpty)
            // What the alert rule ParticipantdServiceOutage watches.
            let metrics = try await MetricsTests.scrape(daemon)
            #expect(metrics["participantd_upstream_outage", ["connect_instance": "default"]] == 1)
            #expect(metrics["participantd_upstream_outage", ["connect_instance": "b"]] == 0)
        }
    }
}

@Suite struct InstanceConfigurationTests {
    func load(_ yaml: String) async throws -> DaemonConfiguration {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/participantd.yaml"
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        return try await ConfigurationSources.load(flags: [:], environment: [:], configFile: file)
    }

    @Test("instances.NAME.* from YAML: each with its endpoint and quota; the top-level keys stay the default instance")
    func instancesFromYAML() async throws {
        let configuration = try await load("""
            region: eu-west-2
            instances:
              tenant-a:
                id: arn:aws:connect:eu-west-2:111122223333:instance/a
                region: ap-southeast-2
                quota: {requestsPerSecond: 5, burst: 7}
              tenant_b:
                endpoint: http://127.0.0.1:9999
            """)
        #expect(configuration.allInstances.map(\.name) == ["default", "tenant-a", "tenant_b"])
        #expect(try configuration.allInstances[0].resolvedEndpoint() == "https://participant.connect.eu-west-2.amazonaws.com")
        #expect(try configuration.allInstances[1].resolvedEndpoint() == "https://participant.connect.ap-southeast-2.amazonaws.com")
        #expect(configuration.allInstances[1].quota.rate == 5 && configuration.allInstances[1].quota.burst == 7)
        #expect(configuration.allInstances[1].fleetKey == "arn:aws:connect:eu-west-2:111122223333:instance/a")
        #expect(configuration.allInstances[2].fleetKey == "tenant_b")
        #expect(configuration.allInstances[2].quota == QuotaPacer.Configuration())
    }

    @Test("A section left empty (every key commented out) sets nothing, and is no error")
    func emptySection() async throws {
        let configuration = try await load("fleet:\n  # postgresURL: postgres://...\ncoalescing:\ninstances:\n")
        #expect(configuration.fleet == FleetSettings() && configuration.instances.isEmpty)
    }

    @Test("Bad instance settings name their key", arguments: [
        ("instances:\n  a:\n    regoin: x\n", "instances.a.regoin", "did you mean instances.a.region?"),
        ("instances:\n  default:\n    region: eu-west-2\n", "instances.default", "top-level keys"),
        ("instances:\n  a:\n    region: Mars\n", "instances.a.region", "region"),
        ("instances:\n  a:\n    quota: {burst: 0}\n", "instances.a.quota.burst", "between 1 and"),
        ("instances:\n  a:\n    id: x\n  b:\n    id: x\n", "instances.b.id", "the id of instance a too"),
        ("instances: 3\n", "instances", "mapping of instance names"),
    ])
    func badInstances(_ yaml: String, _ key: String, _ rule: String) async throws {
        let error = await #expect(throws: ConfigurationError.self) { try await load(yaml) }
        #expect(error?.key == key, "\(String(describing: error))")
        #expect(error?.rule.contains(rule) == true, "\(String(describing: error))")
    }

    @Test("A reload applies an instance's quota and says an added instance needs a restart")
    func reloadInstances() {
        var old = DaemonConfiguration()
        old.instances = [InstanceConfiguration(name: "a")]
        var new = old
        new.instances[0].quota = QuotaPacer.Configuration(rate: 3, burst: 4)
        new.instances.append(InstanceConfiguration(name: "b"))
        let changes = old.changes(to: new).map(\.key)
        #expect(changes.contains("instances.a.quota.requestsPerSecond") && changes.contains("instances.b.region"))
        #expect(DaemonConfiguration.isReloadable("instances.a.quota.burst") && !DaemonConfiguration.isReloadable("instances.b.region"))
        let running = old.withReloadableSettings(of: new)
        #expect(running.instances.map(\.name) == ["a"] && running.instances[0].quota.rate == 3)
    }
}
