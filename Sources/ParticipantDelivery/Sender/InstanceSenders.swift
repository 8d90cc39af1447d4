import ParticipantWire
import ServiceLifecycle

/// One ``EventSender`` per Connect instance, run as one service: each has its own endpoint,
/// pacing and outage detection, so a backlog, a 429 storm or an outage on one instance never
/// delays another.
public final class InstanceSenders: Service, Sendable {
    /// The senders in the configuration's order (`default` first when configured).
    public let senders: [EventSender]
    private let byName: [String: EventSender]

    public init(_ senders: [EventSender]) {
        precondition(!senders.isEmpty, "at least one instance")
        self.senders = senders
        self.byName = Dictionary(uniqueKeysWithValues: senders.map { ($0.instance, $0) })
    }

    public var names: [String] { senders.map(\.instance) }

    public subscript(instance: String) -> EventSender? { byName[instance] }

    /// A new item of `instance` (of `kind`) was stored.
    public func wake(_ instance: String, kind: ItemKind? = nil) {
        byName[instance]?.wake(for: kind)
    }

    /// `participantctl flush`: every instance's sender looks now.
    public func flush() {
        for sender in senders { sender.flush() }
    }

    /// What keeps delivery from being healthy, each problem naming its instance.
    public var healthProblems: [String] {
        senders.flatMap { sender in sender.healthProblems.map { "instance \(sender.instance): \($0)" } }
    }

    /// Whether every sender's loop is going round.
    public var isAlive: Bool { senders.allSatisfy(\.isAlive) }

    public var requestsInFlight: Int { senders.reduce(0) { $0 + $1.requestsInFlight } }

    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for sender in senders {
                // Graceful shutdown reaches each sender through the task-local its handler reads.
                group.addTask { try await sender.run() }
            }
        }
    }
}
