/// The answer to `GET /v1/health`.
public struct HealthReport: Codable, Sendable, Equatable {
    /// `ok` when the daemon accepts and delivers events; `degraded` when `problems` says why not.
    public var status: String
    /// Whether the outbox is open and the socket answers (always true when an answer arrives).
    public var ready: Bool
    /// Why the status is `degraded`: the service unreachable, the outbox near capacity.
    public var problems: [String]
    /// Number of events in each state, every state present.
    public var queue: [String: Int]
    public var version: String

    public init(status: String, ready: Bool, problems: [String] = [], queue: [String: Int], version: String) {
        self.status = status
        self.ready = ready
        self.problems = problems
        self.queue = queue
        self.version = version
    }
}
