import CoreMetrics
import Synchronization

/// The outbox's own counters, made from the factory the daemon chooses (its Prometheus registry).
public struct OutboxMetrics: Sendable {
    private let supersededCounter: CoreMetrics.Counter
    private let saved: [CoalescingRule: CoreMetrics.Counter]

    public init(factory: any MetricsFactory) {
        supersededCounter = CoreMetrics.Counter(label: "participantd_events_superseded_total", factory: factory)
        saved = Dictionary(uniqueKeysWithValues: CoalescingRule.allCases.map {
            ($0, CoreMetrics.Counter(label: "participantd_requests_saved_total", dimensions: [("rule", $0.rawValue)], factory: factory))
        })
    }

    func superseded(_ byRule: [CoalescingRule: Int]) {
        let count = byRule.values.reduce(0, +)
        if count > 0 { supersededCounter.increment(by: count) }
        for (rule, count) in byRule where count > 0 { saved[rule]?.increment(by: count) }
    }
}

/// Requests each coalescing rule saved since the outbox opened, for `participantctl stats`.
public final class SavedRequests: Sendable {
    private let counts = Mutex<[CoalescingRule: Int]>([:])

    func add(_ byRule: [CoalescingRule: Int]) {
        guard byRule.values.contains(where: { $0 > 0 }) else { return }
        counts.withLock { counts in
            for (rule, count) in byRule { counts[rule, default: 0] += count }
        }
    }

    /// Every rule, with zero for those that saved nothing.
    public var byRule: [CoalescingRule: Int] {
        let counts = counts.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: CoalescingRule.allCases.map { ($0, counts[$0] ?? 0) })
    }
}
