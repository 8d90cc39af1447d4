import CoreMetrics
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// One instance's sender's counters and upstream latency (label `connect_instance`: `instance` is
/// the label Prometheus gives each scraped target), made from the factory
/// the daemon chooses.
public final class DeliveryMetrics: Sendable {
    private let factory: any MetricsFactory
    private let sentCounter: CoreMetrics.Counter
    private let expiredCounter: CoreMetrics.Counter
    private let latency: CoreMetrics.Timer
    private let roundsCounter: CoreMetrics.Counter
    private let wakesSkippedCounter: CoreMetrics.Counter
    private let connectionsCreatedCounter: CoreMetrics.Counter
    private let connectionFailures = Mutex<[String: CoreMetrics.Counter]>([:])
    private let failures = Mutex<[String: CoreMetrics.Counter]>([:])
    private let retries = Mutex<[String: CoreMetrics.Counter]>([:])
    private let peerSent = Mutex<[String: CoreMetrics.Counter]>([:])
    private let instance: String
    /// Counts each sent, failed and expired item for the summary line (`log.summarySeconds`).
    private let activity: ActivityTally?

    public init(factory: any MetricsFactory, instance: String, activity: ActivityTally? = nil) {
        self.factory = factory
        self.activity = activity
        self.instance = instance
        let dimensions = [("connect_instance", instance)]
        sentCounter = CoreMetrics.Counter(label: "participantd_events_sent_total", dimensions: dimensions, factory: factory)
        expiredCounter = CoreMetrics.Counter(label: "participantd_events_expired_total", dimensions: dimensions, factory: factory)
        latency = CoreMetrics.Timer(label: "participantd_upstream_request_duration_seconds", dimensions: dimensions, factory: factory)
        roundsCounter = CoreMetrics.Counter(label: "participantd_sender_rounds_total", dimensions: dimensions, factory: factory)
        wakesSkippedCounter = CoreMetrics.Counter(label: "participantd_sender_wakes_skipped_total", dimensions: dimensions, factory: factory)
        connectionsCreatedCounter = CoreMetrics.Counter(label: "participantd_connections_created_total", dimensions: dimensions, factory: factory)
    }

    /// CreateParticipantConnection gave a connection token (a first one or a renewal).
    func connectionCreated() { connectionsCreatedCounter.increment() }
    /// CreateParticipantConnection failed or was refused, by code.
    func connectionFailed(code: String) {
        counter(connectionFailures, "participantd_connection_failures_total", code: code).increment()
    }

    /// An item was delivered; `peer`: whose program submitted it (a counter per user name).
    func sent(peer: Int64) {
        sentCounter.increment()
        activity?.countSent()
        let name = PeerName.of(peer)
        peerSent.withLock { counters in
            if let counter = counters[name] { return counter }
            // A bound on the registry: users are few; past it, one series for the rest.
            let key = counters.count < 1_000 ? name : "other"
            let counter = counters[key] ?? CoreMetrics.Counter(label: "participantd_peer_sent_total", dimensions: [("connect_instance", instance), ("peer", key)], factory: factory)
            counters[key] = counter
            return counter
        }.increment()
    }
    func expired(_ count: Int = 1) {
        guard count > 0 else { return }
        expiredCounter.increment(by: count)
        activity?.countExpired(count)
    }
    /// The sender's loop went round (looked at the outbox).
    func round() { roundsCounter.increment() }
    /// An accepted event needed no round: the quota was spent and the loop asleep until its next token.
    func wakeSkipped() { wakesSkippedCounter.increment() }
    func upstreamRequest(took duration: Duration) { latency.recordNanoseconds(Int64(duration.timeInterval * 1_000_000_000)) }

    func failed(code: String, count: Int = 1) {
        counter(failures, "participantd_events_failed_total", code: code).increment(by: count)
        activity?.countFailed(count)
    }

    func retried(code: String) {
        counter(retries, "participantd_retries_total", code: code).increment()
    }

    private func counter(_ cache: borrowing Mutex<[String: CoreMetrics.Counter]>, _ label: String, code: String) -> CoreMetrics.Counter {
        // Codes come from the service; a sane bound keeps a misbehaving endpoint from growing the registry.
        let key = code.count <= 64 && code.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }) ? code : "Other"
        return cache.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(label: label, dimensions: [("code", key), ("connect_instance", instance)], factory: factory)
            counters[key] = counter
            return counter
        }
    }
}
