import CoreMetrics
import Foundation
import Metrics
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
    let factory: any MetricsFactory
    private let started = ContinuousClock.now

    private let accepted: [String: CoreMetrics.Counter]
    private let sentCounter: CoreMetrics.Counter
    private let expiredCounter: CoreMetrics.Counter
    private let supersededCounter: CoreMetrics.Counter
    private let latency: CoreMetrics.Timer
    private let failures = Mutex<[String: CoreMetrics.Counter]>([:])
    private let retries = Mutex<[String: CoreMetrics.Counter]>([:])
    private let queue: [EventState: CoreMetrics.Gauge]
    private let oldestAge: CoreMetrics.Gauge
    private let quotaTokens: CoreMetrics.Gauge
    private let quotaRate: CoreMetrics.Gauge
    private let inFlight: CoreMetrics.Gauge
    private let uptime: CoreMetrics.Gauge

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // SendEvent answers in tens of milliseconds; a timeout is 10 s.
        factory.durationHistogramBuckets["participantd_upstream_request_duration_seconds"] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        self.factory = factory
        accepted = Dictionary(uniqueKeysWithValues: EventContentType.allCases.map {
            ($0.rawValue, CoreMetrics.Counter(label: "participantd_events_accepted_total", dimensions: [("content_type", $0.shortName)], factory: factory))
        })
        sentCounter = CoreMetrics.Counter(label: "participantd_events_sent_total", factory: factory)
        expiredCounter = CoreMetrics.Counter(label: "participantd_events_expired_total", factory: factory)
        supersededCounter = CoreMetrics.Counter(label: "participantd_events_superseded_total", factory: factory)
        latency = CoreMetrics.Timer(label: "participantd_upstream_request_duration_seconds", factory: factory)
        queue = Dictionary(uniqueKeysWithValues: EventState.allCases.map {
            ($0, CoreMetrics.Gauge(label: "participantd_queue_events", dimensions: [("state", $0.rawValue)], factory: factory))
        })
        oldestAge = CoreMetrics.Gauge(label: "participantd_oldest_waiting_event_age_seconds", factory: factory)
        quotaTokens = CoreMetrics.Gauge(label: "participantd_quota_tokens", factory: factory)
        quotaRate = CoreMetrics.Gauge(label: "participantd_quota_rate", factory: factory)
        inFlight = CoreMetrics.Gauge(label: "participantd_requests_in_flight", factory: factory)
        uptime = CoreMetrics.Gauge(label: "participantd_uptime_seconds", factory: factory)
    }

    // MARK: Events

    func accepted(_ contentType: EventContentType) { accepted[contentType.rawValue]?.increment() }
    func sent() { sentCounter.increment() }
    func expired(_ count: Int = 1) { if count > 0 { expiredCounter.increment(by: count) } }
    func superseded(_ count: Int) { if count > 0 { supersededCounter.increment(by: count) } }
    func upstreamRequest(took duration: Duration) { latency.recordNanoseconds(Int64(duration.timeInterval * 1_000_000_000)) }

    func failed(code: String, count: Int = 1) {
        counter(failures, "participantd_events_failed_total", code: code).increment(by: count)
    }

    func retried(code: String) {
        counter(retries, "participantd_retries_total", code: code).increment()
    }

    private func counter(_ cache: borrowing Mutex<[String: CoreMetrics.Counter]>, _ label: String, code: String) -> CoreMetrics.Counter {
        // Codes come from the service; a sane bound keeps a misbehaving endpoint from growing the registry.
        let key = code.count <= 64 && code.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }) ? code : "Other"
        return cache.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(label: label, dimensions: [("code", key)], factory: factory)
            counters[key] = counter
            return counter
        }
    }

    // MARK: Scrape

    /// What the gauges show, read when `/metrics` is asked for.
    struct Snapshot {
        var counts: [EventState: Int]
        var oldestWaitingAge: Double?
        var quotaTokens: Double
        var quotaRate: Double
        var inFlight: Int
    }

    /// The gauges set from `snapshot`, and everything in Prometheus text format.
    func render(_ snapshot: Snapshot) -> String {
        for (state, gauge) in queue { gauge.record(snapshot.counts[state] ?? 0) }
        oldestAge.record(snapshot.oldestWaitingAge ?? 0)
        quotaTokens.record(snapshot.quotaTokens)
        quotaRate.record(snapshot.quotaRate)
        inFlight.record(snapshot.inFlight)
        uptime.record((ContinuousClock.now - started).timeInterval)
        return registry.emitToString()
    }
}
