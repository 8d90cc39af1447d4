import Configuration
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire
import Foundation
import ParticipantWire
import SystemPackage
import Yams

/// Builds the daemon's configuration from its sources, highest precedence first: command line
/// flags, `PARTICIPANTD_*` environment variables, the YAML file, then the built-in defaults.
public enum ConfigurationSources {
    /// - Parameters:
    ///   - flags: values given as command line flags, by configuration key (`socket`, `region`, ...).
    ///   - environment: the process environment; keys map as `retry.baseDelaySeconds` →
    ///     `PARTICIPANTD_RETRY_BASE_DELAY_SECONDS`.
    ///   - configFile: a YAML file; `nil` for none.
    public static func load(
        flags: [String: String],
        environment: [String: String],
        configFile: String?
    ) async throws -> DaemonConfiguration {
        var providers: [any ConfigProvider] = [
            InMemoryProvider(
                name: "flags",
                values: Dictionary(uniqueKeysWithValues: flags.map { (AbsoluteConfigKey(ConfigKey($0.key)), ConfigValue(.string($0.value), isSecret: false)) })
            ),
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: ConfigKey("participantd")),
        ]
        let known = DaemonConfiguration.keys.map(\.name)
        // A misspelt key would be silently ignored, and its default used: refused instead.
        try DaemonConfiguration.checkKnown(flags.keys, known: known, in: "a flag")
        let variables = Dictionary(uniqueKeysWithValues: known.map { (DaemonConfiguration.environmentVariable(for: $0), $0) })
        let unknownVariables = environment.keys.filter {
            $0.hasPrefix("PARTICIPANTD_") && variables[$0] == nil && !DaemonConfiguration.otherEnvironmentVariables.contains($0)
        }
        if let variable = unknownVariables.sorted().first {
            let suggestion = NearestName.suggestion(for: variable, among: variables.keys).map { "; did you mean \($0) (\(variables[$0]!))?" } ?? ""
            throw ConfigurationError(key: variable, rule: "is not the environment variable of a configuration key\(suggestion)")
        }
        var instanceNames: [String] = []
        if let configFile {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(configFile)))
            } catch {
                throw ConfigurationError(key: "--config", rule: "cannot read \(configFile): \(error)")
            }
            let fileKeys = try yamlKeys(configFile)
            instanceNames = try Self.instanceNames(in: fileKeys)
            let instanceKeys = Set(instanceNames.flatMap { name in InstanceConfiguration.keys.map { "instances.\(name).\($0.name)" } })
            try DaemonConfiguration.checkKnown(fileKeys.filter { !instanceKeys.contains($0) }, known: known, in: "in \(configFile)")
        }
        let configuration = try DaemonConfiguration.load(from: ConfigReader(providers: providers), instanceNames: instanceNames)
        if let configFile, let proxy = configuration.proxy, URLComponents(string: proxy)?.password != nil,
           let mode = SecretFile.modeIfReadableByOthers(configFile) {
            throw ConfigurationError(
                key: "upstream.proxy",
                rule: "holds a password, and \(configFile) is readable by every user (mode \(String(mode, radix: 8))): chmod 0640 (owner root, group participantd) or 0600"
            )
        }
        return configuration
    }

    /// The names under `instances` in a file's keys (`instances.NAME.region`); a key under an
    /// instance that an instance does not have is refused, naming the nearest one.
    static func instanceNames(in keys: [String]) throws(ConfigurationError) -> [String] {
        var names: Set<String> = []
        let known = InstanceConfiguration.keys.map(\.name)
        for key in keys.sorted() where key == "instances" || key.hasPrefix("instances.") {
            let parts = key.split(separator: ".", maxSplits: 2).map(String.init)
            guard parts.count == 3 else {
                throw ConfigurationError(key: key, rule: "must be a mapping of instance names to their settings (instances: {NAME: {region: ...}})")
            }
            guard known.contains(parts[2]) else {
                let suggestion = NearestName.suggestion(for: parts[2], among: known).map { "; did you mean instances.\(parts[1]).\($0)?" } ?? ""
                throw ConfigurationError(key: key, rule: "is not a setting of an instance (\(known.joined(separator: ", ")))\(suggestion)")
            }
            names.insert(parts[1])
        }
        return names.sorted()
    }

    /// The dotted keys a YAML file sets: `upstream: {maxConnections: 4}` sets `upstream.maxConnections`.
    static func yamlKeys(_ path: String) throws(ConfigurationError) -> [String] {
        let document: Any?
        do {
            document = try Yams.load(yaml: String(contentsOfFile: path, encoding: .utf8))
        } catch {
            throw ConfigurationError(key: "--config", rule: "cannot read \(path): \(error)")
        }
        func leaves(_ value: Any?, prefix: String) -> [String] {
            // A section left empty (`fleet:` with every key commented out) sets nothing.
            if value == nil || value is NSNull { return [] }
            guard let mapping = value as? [AnyHashable: Any] else { return prefix.isEmpty ? [] : [prefix] }
            return mapping.flatMap { key, value in leaves(value, prefix: prefix.isEmpty ? "\(key)" : "\(prefix).\(key)") }
        }
        return leaves(document, prefix: "")
    }
}
