import CoreMetrics

/// The outbox's own counter, made from the factory the daemon chooses (its Prometheus registry).
public struct OutboxMetrics: Sendable {
    private let supersededCounter: CoreMetrics.Counter

    public init(factory: any MetricsFactory) {
        supersededCounter = CoreMetrics.Counter(label: "participantd_events_superseded_total", factory: factory)
    }

    func superseded(_ count: Int) { if count > 0 { supersededCounter.increment(by: count) } }
}
