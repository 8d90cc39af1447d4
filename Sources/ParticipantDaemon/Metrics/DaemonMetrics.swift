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
/// | `participantd_events_accepted_total` | counter | `kind`, `content_type` |
/// | `participantd_events_sent_total` | counter | `instance` |
/// | `participantd_events_failed_total` | counter | `code` (the service's error code), `instance` |
/// | `participantd_events_expired_total` | counter | `instance` |
/// | `participantd_events_superseded_total` | counter | |
/// | `participantd_requests_saved_total` | counter | `rule` (the coalescing rule that saved it) |
/// | `participantd_retries_total` | counter | `code`, `instance` |
/// | `participantd_upstream_request_duration_seconds` | histogram | `instance` |
/// | `participantd_sender_rounds_total` | counter | `instance` (the sender's loop looked at the outbox) |
/// | `participantd_sender_wakes_skipped_total` | counter | `instance` (an accepted event needed no round: the quota was spent) |
/// | `participantd_queue_events` | gauge | `state` |
/// | `participantd_instance_waiting_events` | gauge | `instance` (queued and sending) |
/// | `participantd_oldest_waiting_event_age_seconds` | gauge | |
/// | `participantd_quota_tokens` | gauge | `instance` |
/// | `participantd_quota_rate` | gauge | `instance` (requests per second now; 0: pacing off) |
/// | `participantd_requests_in_flight` | gauge | `instance` |
/// | `participantd_connections_created_total` | counter | `instance` |
/// | `participantd_connection_failures_total` | counter | `code`, `instance` |
/// | `participantd_uptime_seconds` | gauge | |
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// The layers' counters, on this registry.
    let outbox: OutboxMetrics
    let api: APIMetrics
    private let factory: PrometheusMetricsFactory

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
        self.factory = factory
        let gauges = Gauges(factory: factory)
        api = APIMetrics(factory: factory) { snapshot in
            gauges.record(snapshot)
            return registry.emitToString()
        }
    }

    /// One instance's sender's counters.
    func delivery(for instance: String) -> DeliveryMetrics {
        DeliveryMetrics(factory: factory, instance: instance)
    }

    /// The gauges, set from a snapshot at each scrape.
    private final class Gauges: Sendable {
        private let started = ContinuousClock.now
        private let factory: any MetricsFactory
        private let queue: [EventState: CoreMetrics.Gauge]
        private let oldestAge: CoreMetrics.Gauge
        private let uptime: CoreMetrics.Gauge
        /// Per instance: tokens, rate, in flight, waiting; made at the first scrape that names it.
        private let perInstance = Mutex<[String: [CoreMetrics.Gauge]]>([:])
        /// Per peer: waiting items; made at the first scrape that names it, set to 0 once it has none.
        private let perPeer = Mutex<[String: CoreMetrics.Gauge]>([:])

        init(factory: any MetricsFactory) {
            self.factory = factory
            queue = Dictionary(uniqueKeysWithValues: EventState.allCases.map {
                ($0, CoreMetrics.Gauge(label: "participantd_queue_events", dimensions: [("state", $0.rawValue)], factory: factory))
            })
            oldestAge = CoreMetrics.Gauge(label: "participantd_oldest_waiting_event_age_seconds", factory: factory)
            uptime = CoreMetrics.Gauge(label: "participantd_uptime_seconds", factory: factory)
        }

        func record(_ snapshot: MetricsSnapshot) {
            for (state, gauge) in queue { gauge.record(snapshot.counts[state] ?? 0) }
            oldestAge.record(snapshot.oldestWaitingAge ?? 0)
            for (instance, sender) in snapshot.senders {
                let gauges = perInstance.withLock { gauges in
                    if let made = gauges[instance] { return made }
                    let made = ["participantd_quota_tokens", "participantd_quota_rate", "participantd_requests_in_flight", "participantd_instance_waiting_events"]
                        .map { CoreMetrics.Gauge(label: $0, dimensions: [("instance", instance)], factory: factory) }
                    gauges[instance] = made
                    return made
                }
                gauges[0].record(sender.quotaTokens)
                gauges[1].record(sender.quotaRate)
                gauges[2].record(sender.inFlight)
                gauges[3].record(snapshot.waitingByInstance[instance] ?? 0)
            }
            let peers = perPeer.withLock { gauges in
                for name in snapshot.waitingByPeer.keys where gauges[name] == nil && gauges.count < 1_000 {
                    gauges[name] = CoreMetrics.Gauge(label: "participantd_peer_waiting_events", dimensions: [("peer", name)], factory: factory)
                }
                return gauges
            }
            for (name, gauge) in peers { gauge.record(snapshot.waitingByPeer[name] ?? 0) }
            uptime.record((ContinuousClock.now - started).timeInterval)
        }
    }
}
