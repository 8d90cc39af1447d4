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
    /// Waiting (queued or sending) items by peer (user name, ``ParticipantOutbox/PeerName``).
    public var waitingByPeer: [String: Int] = [:]
    /// In a fleet: whether the quota is shared now (`false`: the fleet's database does not answer,
    /// or grants nothing); `nil` without a fleet.
    public var fleetShared: Bool?
    /// The outbox's database: bytes in use (free pages not counted), its limit
    /// (`outbox.maxDatabaseMegabytes`; `nil`: none), and whether new items are refused for lack of room.
    public var databaseBytes: Int64 = 0
    public var databaseLimitBytes: Int64?
    public var storageFull = false
}

/// The API's counter (items accepted, by kind and content type: every message is `message`) and
/// the renderer of `GET /metrics`.
public struct APIMetrics: Sendable {
    private let accepted: [ItemContentType: CoreMetrics.Counter]
    /// Sets the gauges from a snapshot and renders every metric in Prometheus text format.
    let render: @Sendable (MetricsSnapshot) -> String
    /// Counts each accepted item for the summary line (`log.summarySeconds`).
    private let activity: ActivityTally?

    public init(factory: any MetricsFactory, activity: ActivityTally? = nil, render: @escaping @Sendable (MetricsSnapshot) -> String) {
        self.activity = activity
        let counters = Dictionary(uniqueKeysWithValues: Set(ItemContentType.allCases.map(\.shortName)).map { name in
            let kind = ItemContentType.allCases.first { $0.shortName == name }!.kind
            return (name, CoreMetrics.Counter(label: "participantd_events_accepted_total", dimensions: [("content_type", name), ("kind", kind.rawValue)], factory: factory))
        })
        accepted = Dictionary(uniqueKeysWithValues: ItemContentType.allCases.map { ($0, counters[$0.shortName]!) })
        self.render = render
    }

    func accepted(_ contentType: ItemContentType) {
        accepted[contentType]?.increment()
        activity?.countAccepted()
    }
}
