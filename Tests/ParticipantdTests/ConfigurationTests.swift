import Foundation
import Logging
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import Testing

@Suite struct ConfigurationTests {
    func load(flags: [String: String] = [:], environment: [String: String] = [:], yaml: String? = nil) async throws -> DaemonConfiguration {
        var file: String?
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        if let yaml {
            file = directory.path + "/participantd.yaml"
            try yaml.write(toFile: file!, atomically: true, encoding: .utf8)
        }
        return try await ConfigurationSources.load(flags: flags, environment: environment, configFile: file)
    }

    @Test func defaults() async throws {
        let configuration = try await load()
        #expect(configuration == DaemonConfiguration())
        #expect(configuration.socketPath == "/run/participantd/participantd.sock")
        #expect(configuration.socketMode == 0o660)
        #expect(try configuration.resolvedEndpoint() == "https://participant.connect.us-east-1.amazonaws.com")
    }

    @Test("The repository's config/participantd.yaml loads and states the built-in defaults")
    func repositoryConfigMatchesDefaults() async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/participantd.yaml").path
        let configuration = try await ConfigurationSources.load(flags: [:], environment: [:], configFile: path)
        #expect(configuration == DaemonConfiguration())
    }

    @Test func flagsOverEnvironmentOverFile() async throws {
        let yaml = """
            region: eu-west-2
            socket: /tmp/from-file.sock
            retry:
              baseDelaySeconds: 0.25
            log:
              level: debug
            """
        let configuration = try await load(
            flags: ["socket": "/tmp/from-flag.sock"],
            environment: ["PARTICIPANTD_SOCKET": "/tmp/from-env.sock", "PARTICIPANTD_REGION": "ap-southeast-2",
                          "PARTICIPANTD_SENDER_MAX_IN_FLIGHT": "4"],
            yaml: yaml
        )
        #expect(configuration.socketPath == "/tmp/from-flag.sock")
        #expect(configuration.region == "ap-southeast-2")
        #expect(configuration.sender.maxInFlight == 4)
        #expect(configuration.sender.retry.baseDelay == .milliseconds(250))
        #expect(configuration.logLevel == .debug)
    }

    @Test("A bad value names its key and its rule", arguments: [
        (["PARTICIPANTD_SENDER_MAX_IN_FLIGHT": "many"], "sender.maxInFlight", "whole number"),
        (["PARTICIPANTD_SENDER_MAX_IN_FLIGHT": "0"], "sender.maxInFlight", "between 1 and 4096"),
        (["PARTICIPANTD_SOCKET_MODE": "rw"], "socketMode", "octal"),
        (["PARTICIPANTD_REGION": "Mars"], "region", "AWS region"),
        (["PARTICIPANTD_ENDPOINT": "participant.local"], "endpoint", "http:// or https://"),
        (["PARTICIPANTD_LOG_LEVEL": "loud"], "log.level", "one of"),
        (["PARTICIPANTD_FIPS": "maybe"], "fips", "true or false"),
        (["PARTICIPANTD_RETRY_BASE_DELAY_SECONDS": "5", "PARTICIPANTD_RETRY_MAX_DELAY_SECONDS": "1"], "retry.maxDelaySeconds", "not be less"),
        (["PARTICIPANTD_DEADLINES_TYPING_SECONDS": "-1"], "deadlines.typingSeconds", "between"),
        (["PARTICIPANTD_DATABASE": "outbox.sqlite"], "database", "file path"),
    ])
    func badValues(environment: [String: String], key: String, rule: String) async throws {
        let error = await #expect(throws: ConfigurationError.self) { try await load(environment: environment) }
        #expect(error?.key == key)
        #expect(error?.rule.contains(rule) == true, "\(error?.rule ?? "")")
    }

    @Test func badYAMLValueNamesTheKey() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await load(yaml: "upstream:\n  requestTimeoutSeconds: soon\n")
        }
        #expect(error?.key == "upstream.requestTimeoutSeconds")
    }

    @Test func missingConfigFileIsAnError() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await ConfigurationSources.load(flags: [:], environment: [:], configFile: "/nonexistent/participantd.yaml")
        }
        #expect(error?.key == "--config")
    }
}

@Suite struct ConfigurationDocumentationTests {
    @Test("Every key is in config/participantd.yaml and the README's table; reloadable keys exist")
    func everyKeyDocumented() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8)
        let yaml = try String(contentsOf: repository.appendingPathComponent("config/participantd.yaml"), encoding: .utf8)
        let keys = DaemonConfiguration().keyValues.map(\.key)
        for key in keys {
            #expect(readme.contains("| `\(key)` |"), "README table lacks \(key)")
            let leaf = String(key.split(separator: ".").last!)
            #expect(yaml.contains("\(leaf):"), "config/participantd.yaml lacks \(key)")
        }
        #expect(DaemonConfiguration.reloadableKeys.isSubset(of: Set(keys)))
    }

    @Test("A reload takes exactly the reloadable keys from the new settings")
    func reloadTakesTheReloadableKeys() throws {
        var new = DaemonConfiguration()
        new.logLevel = .debug
        new.logFormat = .json
        new.sender.quota = QuotaPacer.Configuration(rate: 3, burst: 4)
        new.coalescing.typingInterval = .seconds(2)
        new.coalescing.receipts = false
        new.limits.retention = .seconds(60)
        new.healthMaxWaitingAge = .seconds(30)
        new.sender.maxInFlight = 2
        new.region = "eu-west-2"
        let old = DaemonConfiguration()
        #expect(Set(old.changes(to: new).map(\.key)) == DaemonConfiguration.reloadableKeys.union(["sender.maxInFlight", "region"]))
        let running = old.withReloadableSettings(of: new)
        #expect(Set(running.changes(to: new).map(\.key)) == ["sender.maxInFlight", "region"])
    }
}
