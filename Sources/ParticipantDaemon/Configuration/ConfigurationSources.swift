import Configuration
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire
import SystemPackage

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
        if let configFile {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(configFile)))
            } catch {
                throw ConfigurationError(key: "--config", rule: "cannot read \(configFile): \(error)")
            }
        }
        return try DaemonConfiguration.load(from: ConfigReader(providers: providers))
    }
}
