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
/// | `participantd_events_sent_total` | counter | `connect_instance` (the Connect instance's configured name: not `instance`, the label Prometheus gives each target) |
/// | `participantd_events_failed_total` | counter | `code` (the service's error code), `connect_instance` |
/// | `participantd_events_expired_total` | counter | `connect_instance` |
/// | `participantd_events_superseded_total` | counter | |
/// | `participantd_requests_saved_total` | counter | `rule` (the coalescing rule that saved it) |
/// | `participantd_retries_total` | counter | `code`, `connect_instance` |
/// | `participantd_upstream_request_duration_seconds` | histogram | `connect_instance` |
/// | `participantd_sender_rounds_total` | counter | `connect_instance` (the sender's loop looked at the outbox) |
/// | `participantd_sender_wakes_skipped_total` | counter | `connect_instance` (an accepted event needed no round: the quota was spent) |
/// | `participantd_queue_events` | gauge | `state` |
/// | `participantd_instance_waiting_events` | gauge | `connect_instance` (queued and sending) |
/// | `participantd_oldest_waiting_event_age_seconds` | gauge | |
/// | `participantd_quota_tokens` | gauge | `connect_instance` |
/// | `participantd_quota_rate` | gauge | `connect_instance` (requests per second now; 0: pacing off) |
/// | `participantd_requests_in_flight` | gauge | `connect_instance` |
/// | `participantd_connections_created_total` | counter | `connect_instance` |
/// | `participantd_connection_failures_total` | counter | `code`, `connect_instance` |
/// | `participantd_upstream_outage` | gauge | `connect_instance` (1: the service is taken as down, sending suspended) |
/// | `participantd_fleet_quota_shared` | gauge | (in a fleet only; 0: its database does not answer or grants nothing) |
/// | `participantd_outbox_database_bytes`, `_limit_bytes` | gauge | (bytes in use; `outbox.maxDatabaseMegabytes`, when set) |
/// | `participantd_outbox_storage_full` | gauge | (1: new items are refused with 507) |
/// | `participantd_uptime_seconds` | gauge | |
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// The layers' counters, on this registry.
    let outbox: OutboxMetrics
    let api: APIMetrics
    /// Items accepted, sent, failed and expired, for the summary line (`log.summarySeconds`).
    let activity = ActivityTally()
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
        api = APIMetrics(factory: factory, activity: activity) { snapshot in
            gauges.record(snapshot)
            return registry.emitToString()
        }
    }

    /// One instance's sender's counters.
    func delivery(for instance: String) -> DeliveryMetrics {
        DeliveryMetrics(factory: factory, instance: instance, activity: activity)
    }

    /// The gauges, set from a snapshot at each scrape.
    private final class Gauges: Sendable {
        private let started = ContinuousClock.now
        private let factory: any MetricsFactory
        private let queue: [EventState: CoreMetrics.Gauge]
        private let oldestAge: CoreMetrics.Gauge
        private let uptime: CoreMetrics.Gauge
        private let databaseBytes: CoreMetrics.Gauge
        private let databaseLimitBytes: CoreMetrics.Gauge
        private let storageFull: CoreMetrics.Gauge
        /// Made at the first scrape that finds a fleet.
        private let fleetShared = Mutex<CoreMetrics.Gauge?>(nil)
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
            databaseBytes = CoreMetrics.Gauge(label: "participantd_outbox_database_bytes", factory: factory)
            databaseLimitBytes = CoreMetrics.Gauge(label: "participantd_outbox_database_limit_bytes", factory: factory)
            storageFull = CoreMetrics.Gauge(label: "participantd_outbox_storage_full", factory: factory)
        }

        func record(_ snapshot: MetricsSnapshot) {
            for (state, gauge) in queue { gauge.record(snapshot.counts[state] ?? 0) }
            oldestAge.record(snapshot.oldestWaitingAge ?? 0)
            for (instance, sender) in snapshot.senders {
                let gauges = perInstance.withLock { gauges in
                    if let made = gauges[instance] { return made }
                    let made = ["participantd_quota_tokens", "participantd_quota_rate", "participantd_requests_in_flight", "participantd_instance_waiting_events",
                                "participantd_upstream_outage"]
                        .map { CoreMetrics.Gauge(label: $0, dimensions: [("connect_instance", instance)], factory: factory) }
                    gauges[instance] = made
                    return made
                }
                gauges[0].record(sender.quotaTokens)
                gauges[1].record(sender.quotaRate)
                gauges[2].record(sender.inFlight)
                gauges[3].record(snapshot.waitingByInstance[instance] ?? 0)
                gauges[4].record(sender.outage ? 1 : 0)
            }
            databaseBytes.record(snapshot.databaseBytes)
            // 0: no limit (outbox.maxDatabaseMegabytes: 0).
            databaseLimitBytes.record(snapshot.databaseLimitBytes ?? 0)
            storageFull.record(snapshot.storageFull ? 1 : 0)
            if let shared = snapshot.fleetShared {
                let gauge = fleetShared.withLock { gauge in
                    if let gauge { return gauge }
                    let made = CoreMetrics.Gauge(label: "participantd_fleet_quota_shared", factory: factory)
                    gauge = made
                    return made
                }
                gauge.record(shared ? 1 : 0)
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
