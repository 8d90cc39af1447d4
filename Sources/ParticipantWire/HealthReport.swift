/// The answer to `GET /v1/health`.
public struct HealthReport: Codable, Sendable, Equatable {
    /// `ok` when the daemon accepts and delivers events.
    public var status: String
    /// Whether the outbox is open and the socket answers (always true when an answer arrives).
    public var ready: Bool
    /// Number of events in each state, every state present.
    public var queue: [String: Int]
    public var version: String

    public init(status: String, ready: Bool, queue: [String: Int], version: String) {
        self.status = status
        self.ready = ready
        self.queue = queue
        self.version = version
    }
}
