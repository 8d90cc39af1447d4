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
        if let configFile {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(configFile)))
            } catch {
                throw ConfigurationError(key: "--config", rule: "cannot read \(configFile): \(error)")
            }
            try DaemonConfiguration.checkKnown(try yamlKeys(configFile), known: known, in: "in \(configFile)")
        }
        return try DaemonConfiguration.load(from: ConfigReader(providers: providers))
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
            guard let mapping = value as? [AnyHashable: Any] else { return prefix.isEmpty ? [] : [prefix] }
            return mapping.flatMap { key, value in leaves(value, prefix: prefix.isEmpty ? "\(key)" : "\(prefix).\(key)") }
        }
        return leaves(document, prefix: "")
    }
}
