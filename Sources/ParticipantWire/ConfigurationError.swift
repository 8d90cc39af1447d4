/// A configuration value that breaks its rule: the daemon stops at start and says which.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var rule: String
    public var description: String { "configuration key \(key): \(rule)" }

    public init(key: String, rule: String) {
        self.key = key
        self.rule = rule
    }
}
