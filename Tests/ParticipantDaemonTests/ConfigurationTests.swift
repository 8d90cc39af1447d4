import Foundation
import Logging
@testable import ParticipantAPI
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import Testing
import ParticipantTestSupport

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

    @Test("A misspelt key in the file stops the daemon, naming it and the key it may have meant", arguments: [
        ("regoin: eu-west-2\n", "regoin", "did you mean region?"),
        ("sender:\n  maxInFligt: 5\n", "sender.maxInFligt", "did you mean sender.maxInFlight?"),
        ("quota:\n  requestsPerSecond: 5\n  colour: blue\n", "quota.colour", "is not a configuration key"),
    ])
    func unknownFileKeys(yaml: String, key: String, rule: String) async throws {
        let error = await #expect(throws: ConfigurationError.self) { try await load(yaml: yaml) }
        #expect(error?.key == key)
        #expect(error?.rule.contains(rule) == true, "\(error?.rule ?? "")")
    }

    @Test("A PARTICIPANTD_ variable that is no key stops the daemon, naming it and the one it may have meant")
    func unknownEnvironmentVariables() async throws {
        let error = await #expect(throws: ConfigurationError.self) { try await load(environment: ["PARTICIPANTD_REGOIN": "eu-west-2"]) }
        #expect(error?.key == "PARTICIPANTD_REGOIN")
        #expect(error?.rule.contains("did you mean PARTICIPANTD_REGION (region)?") == true, "\(error?.rule ?? "")")
        // Package.swift's build switches and other programs' variables are not the daemon's business.
        _ = try await load(environment: ["PARTICIPANTD_BENCHMARKS": "1", "PATH": "/usr/bin"])
    }

    @Test("Every key's environment variable is the one the environment provider reads")
    func everyKeyHasItsEnvironmentVariable() async throws {
        let defaults = DaemonConfiguration()
        for key in DaemonConfiguration.keys {
            let variable = DaemonConfiguration.environmentVariable(for: key.name)
            _ = try await load(environment: [variable: key.show(defaults)])
        }
        #expect(DaemonConfiguration.environmentVariable(for: "health.maxWaitingAgeSeconds") == "PARTICIPANTD_HEALTH_MAX_WAITING_AGE_SECONDS")
        let changed = try await load(environment: [
            "PARTICIPANTD_HEALTH_MAX_WAITING_AGE_SECONDS": "7", "PARTICIPANTD_DUAL_STACK": "true", "PARTICIPANTD_API_MAX_BODY_BYTES": "2048",
        ])
        #expect(changed.healthMaxWaitingAge == .seconds(7) && changed.useDualStack && changed.api.maxBodyBytes == 2048)
    }

    @Test func missingConfigFileIsAnError() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await ConfigurationSources.load(flags: [:], environment: [:], configFile: "/nonexistent/participantd.yaml")
        }
        #expect(error?.key == "--config")
    }
}

@Suite struct ConfigurationDocumentationTests {
    @Test("Every key of the table is in config/participantd.yaml and in the README's table, with its default and summary")
    func everyKeyDocumented() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8)
        let yaml = try String(contentsOf: repository.appendingPathComponent("config/participantd.yaml"), encoding: .utf8)
        let defaults = DaemonConfiguration()
        for key in DaemonConfiguration.keys {
            let row = readme.split(separator: "\n").first { $0.hasPrefix("| `\(key.name)` |") }
            guard let row else { Issue.record("README table lacks \(key.name)"); continue }
            let shown = key.show(defaults)
            // A whole number of a Double key (`10.0`) is written `10` in the table.
            let value = shown.hasSuffix(".0") ? String(shown.dropLast(2)) : shown
            #expect(value.isEmpty ? row.contains("empty") : row.contains("`\(value)`") || row.contains("`\"\(value)\"`"), "\(row): default \(value)")
            #expect(row.contains(key.summary), "\(row): \(key.summary)")
            #expect(row.contains("reload") == key.reloadable, "\(row): reloadable \(key.reloadable)")
            let leaf = String(key.name.split(separator: ".").last!)
            #expect(yaml.contains("\(leaf):"), "config/participantd.yaml lacks \(key.name)")
        }
        // The shipped file holds no key the daemon would refuse.
        #expect(throws: Never.self) {
            try DaemonConfiguration.checkKnown(
                try ConfigurationSources.yamlKeys(repository.appendingPathComponent("config/participantd.yaml").path),
                known: DaemonConfiguration.keys.map(\.name), in: "config/participantd.yaml"
            )
        }
    }

    @Test("A reload takes exactly the reloadable keys from the new settings")
    func reloadTakesTheReloadableKeys() throws {
        var new = DaemonConfiguration()
        new.logLevel = .debug
        new.logFormat = .json
        new.sender.quota = QuotaPacer.Configuration(rate: 3, burst: 4)
        new.coalescing.typingInterval = .seconds(2)
        new.coalescing.receipts = false
        new.coalescing.newestReceiptOnly = false
        new.coalescing.deliveredHold = .zero
        new.coalescing.typingFromRequestStart = false
        new.coalescing.fairShare = false
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

@Suite struct DescriptorLimitTests {
    @Test("The open-file limit needed: every listener's connections, the upstream's, and a reserve; raised when the hard limit allows")
    func needed() {
        var configuration = DaemonConfiguration()
        #expect(DescriptorLimit.needed(for: configuration) == 256 + 16 + DescriptorLimit.reserve)
        configuration.awsListen = ListenAddress(host: "127.0.0.1", port: 0)
        configuration.metricsListen = ListenAddress(host: "127.0.0.1", port: 0)
        #expect(DescriptorLimit.needed(for: configuration) == 3 * 256 + 16 + DescriptorLimit.reserve)
        #expect(DescriptorLimit.step(soft: 1_024, hard: 16_384, needed: 912) == nil)
        #expect(DescriptorLimit.step(soft: 1_024, hard: 16_384, needed: 2_000) == .raise(to: 2_000))
        #expect(DescriptorLimit.step(soft: 1_024, hard: 1_024, needed: 2_000) == .tooLow(hard: 1_024))
    }
}
