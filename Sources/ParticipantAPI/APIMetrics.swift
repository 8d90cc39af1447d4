import CoreMetrics
import ParticipantOutbox
import ParticipantWire

/// What the gauges show, read when `/metrics` is asked for.
public struct MetricsSnapshot: Sendable {
    public var counts: [EventState: Int]
    public var oldestWaitingAge: Double?
    /// Each instance's sender, by instance name.
    public var senders: [String: SenderState]
    /// Waiting (queued or sending) events by instance.
    public var waitingByInstance: [String: Int]
}

/// The API's counter (events accepted, by content type) and the renderer of `GET /metrics`.
public struct APIMetrics: Sendable {
    private let accepted: [EventContentType: CoreMetrics.Counter]
    /// Sets the gauges from a snapshot and renders every metric in Prometheus text format.
    let render: @Sendable (MetricsSnapshot) -> String

    public init(factory: any MetricsFactory, render: @escaping @Sendable (MetricsSnapshot) -> String) {
        accepted = Dictionary(uniqueKeysWithValues: EventContentType.allCases.map {
            ($0, CoreMetrics.Counter(label: "participantd_events_accepted_total", dimensions: [("content_type", $0.shortName)], factory: factory))
        })
        self.render = render
    }

    func accepted(_ contentType: EventContentType) { accepted[contentType]?.increment() }
}
