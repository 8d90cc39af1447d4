import CoreMetrics
import Foundation
import Metrics
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire
import Prometheus
import Synchronization

/// The daemon's metrics: swift-metrics counters, gauges and a timer, backed by a Prometheus
/// registry of its own (not the process-wide `MetricsSystem`, so daemons in one test process
/// keep apart). `GET /metrics` renders it in Prometheus text format.
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `participantd_events_accepted_total` | counter | `content_type` |
/// | `participantd_events_sent_total` | counter | |
/// | `participantd_events_failed_total` | counter | `code` (the service's error code) |
/// | `participantd_events_expired_total` | counter | |
/// | `participantd_events_superseded_total` | counter | |
/// | `participantd_retries_total` | counter | `code` |
/// | `participantd_upstream_request_duration_seconds` | histogram | |
/// | `participantd_queue_events` | gauge | `state` |
/// | `participantd_oldest_waiting_event_age_seconds` | gauge | |
/// | `participantd_quota_tokens` | gauge | |
/// | `participantd_quota_rate` | gauge | (requests per second now; 0: pacing off) |
/// | `participantd_requests_in_flight` | gauge | |
/// | `participantd_uptime_seconds` | gauge | |
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// The layers' counters, on this registry.
    let outbox: OutboxMetrics
    let delivery: DeliveryMetrics
    let api: APIMetrics

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // SendEvent answers in tens of milliseconds; a timeout is 10 s.
        factory.durationHistogramBuckets["participantd_upstream_request_duration_seconds"] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        outbox = OutboxMetrics(factory: factory)
        delivery = DeliveryMetrics(factory: factory)
        let gauges = Gauges(factory: factory)
        api = APIMetrics(factory: factory) { snapshot in
            gauges.record(snapshot)
            return registry.emitToString()
        }
    }

    /// The gauges, set from a snapshot at each scrape.
    private final class Gauges: Sendable {
        private let started = ContinuousClock.now
        private let queue: [EventState: CoreMetrics.Gauge]
        private let oldestAge: CoreMetrics.Gauge
        private let quotaTokens: CoreMetrics.Gauge
        private let quotaRate: CoreMetrics.Gauge
        private let inFlight: CoreMetrics.Gauge
        private let uptime: CoreMetrics.Gauge

        init(factory: any MetricsFactory) {
            queue = Dictionary(uniqueKeysWithValues: EventState.allCases.map {
                ($0, CoreMetrics.Gauge(label: "participantd_queue_events", dimensions: [("state", $0.rawValue)], factory: factory))
            })
            oldestAge = CoreMetrics.Gauge(label: "participantd_oldest_waiting_event_age_seconds", factory: factory)
            quotaTokens = CoreMetrics.Gauge(label: "participantd_quota_tokens", factory: factory)
            quotaRate = CoreMetrics.Gauge(label: "participantd_quota_rate", factory: factory)
            inFlight = CoreMetrics.Gauge(label: "participantd_requests_in_flight", factory: factory)
            uptime = CoreMetrics.Gauge(label: "participantd_uptime_seconds", factory: factory)
        }

        func record(_ snapshot: MetricsSnapshot) {
            for (state, gauge) in queue { gauge.record(snapshot.counts[state] ?? 0) }
            oldestAge.record(snapshot.oldestWaitingAge ?? 0)
            quotaTokens.record(snapshot.quotaTokens)
            quotaRate.record(snapshot.quotaRate)
            inFlight.record(snapshot.inFlight)
            uptime.record((ContinuousClock.now - started).timeInterval)
        }
    }
}
