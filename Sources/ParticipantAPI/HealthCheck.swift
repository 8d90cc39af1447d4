import Foundation
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// What makes the daemon `degraded`, each with its reason: the service has not answered (the
/// sender's outage detector), the outbox is 90% full, storage is full, or the oldest waiting
/// event was accepted longer ago than `health.maxWaitingAgeSeconds`.
public final class HealthCheck: Sendable {
    let outbox: Outbox
    private let threshold: Mutex<Duration>
    private let delivery: any DeliveryControl

    public init(outbox: Outbox, maxWaitingAge: Duration, delivery: any DeliveryControl) {
        self.outbox = outbox
        self.threshold = Mutex(maxWaitingAge)
        self.delivery = delivery
    }

    /// Changed by a reload.
    public var maxWaitingAge: Duration {
        get { threshold.withLock { $0 } }
        set { threshold.withLock { $0 = newValue } }
    }

    /// The reasons the daemon is degraded now; empty when it is healthy.
    public func problems() async throws -> [String] {
        var problems = delivery.healthProblems()
        let limits = outbox.limits
        if outbox.waitingCount >= limits.capacity * 9 / 10 {
            problems.append("the outbox holds \(outbox.waitingCount) waiting events, near its capacity of \(limits.capacity)")
        }
        if let storageProblem = outbox.storageProblem {
            problems.append(storageProblem)
        }
        if let oldest = try await outbox.oldestWaiting() {
            let limit = maxWaitingAge.timeInterval
            if oldest.age > limit {
                problems.append("the oldest waiting event was accepted \(Int(oldest.age)) s ago (\(WireCoding.formatTimestamp(oldest.acceptedAt))), longer than health.maxWaitingAgeSeconds (\(Int(limit)) s)")
            }
        }
        return problems
    }
}
