#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `GET /v1/events`: events of the outbox, as `participantctl list` asks for them.
public struct EventList: Codable, Sendable, Equatable {
    public var events: [EventRecord]
    /// When the page is full: the `cursor` that asks for the page after it (more may follow).
    public var nextCursor: Int64?

    public init(events: [EventRecord], nextCursor: Int64? = nil) {
        self.events = events
        self.nextCursor = nextCursor
    }
}

/// What a queue command did to events.
public enum QueueAction: String, Codable, Sendable, CaseIterable {
    case retried, held, released, deleted, flushed

    /// Whether the events it changed may be due now, so that the sender should look at once.
    public var makesEventsDue: Bool {
        switch self {
        case .retried, .released, .flushed: true
        case .held, .deleted: false
        }
    }
}

/// The answer to a queue command that changes events (retry, hold, release, delete, flush).
public struct QueueChange: Codable, Sendable, Equatable {
    /// What was done: a ``QueueAction``'s name.
    public var action: String
    /// How many events it changed.
    public var changed: Int
    /// The event as it is now (as it was, for `deleted`); `nil` for commands on many events.
    public var event: EventRecord?

    public init(action: QueueAction, changed: Int, event: EventRecord?) {
        self.action = action.rawValue
        self.changed = changed
        self.event = event
    }
}

/// `GET /v1/queue/stats`: `participantctl stats`.
public struct QueueStats: Codable, Sendable, Equatable {
    /// Events in each state.
    public var counts: [String: Int]
    /// When the oldest waiting (queued or sending) event was accepted.
    public var oldestWaitingAcceptedAt: Date?
    public var oldestWaitingAgeSeconds: Double?
    /// Events that ended `sent` in the last minute, and per second over it.
    public var sentLastMinute: Int
    public var sendRatePerSecond: Double
    public var requestsInFlight: Int
    /// The pacing rate now (requests per second; lower than configured after throttling). 0: pacing off.
    public var quotaRate: Double
    /// Each configured Connect instance, by name.
    public var instances: [String: InstanceStats]?
    /// The fleet's shared quota; `nil`: not in a fleet.
    public var fleet: FleetStats?
    /// Requests each coalescing rule saved (events superseded by it) since the daemon started.
    public var savedRequests: [String: Int]?
    /// Items in each state by kind (`event`, `message`, `disconnect`), for the kinds the outbox holds.
    public var countsByKind: [String: [String: Int]]?
    /// Each peer's waiting items and items sent in the last minute, by user name (`uid N` for a
    /// uid with no account, `unknown` for items stored before peers were kept).
    public var peers: [String: PeerStats]?

    public init(
        counts: [String: Int], oldestWaitingAcceptedAt: Date?, oldestWaitingAgeSeconds: Double?, sentLastMinute: Int,
        sendRatePerSecond: Double, requestsInFlight: Int, quotaRate: Double,
        instances: [String: InstanceStats]? = nil, fleet: FleetStats? = nil, savedRequests: [String: Int]? = nil,
        countsByKind: [String: [String: Int]]? = nil, peers: [String: PeerStats]? = nil
    ) {
        self.peers = peers
        self.countsByKind = countsByKind
        self.savedRequests = savedRequests
        self.instances = instances
        self.fleet = fleet
        self.counts = counts
        self.oldestWaitingAcceptedAt = oldestWaitingAcceptedAt
        self.oldestWaitingAgeSeconds = oldestWaitingAgeSeconds
        self.sentLastMinute = sentLastMinute
        self.sendRatePerSecond = sendRatePerSecond
        self.requestsInFlight = requestsInFlight
        self.quotaRate = quotaRate
    }
}

/// One Connect instance in `GET /v1/queue/stats`.
public struct InstanceStats: Codable, Sendable, Equatable {
    /// Events of this instance in each state.
    public var counts: [String: Int]
    public var sentLastMinute: Int
    public var requestsInFlight: Int
    /// This instance's pacing rate now (requests per second); 0: pacing off.
    public var quotaRate: Double
    /// What keeps this instance's delivery from being healthy now.
    public var problems: [String]

    public init(counts: [String: Int], sentLastMinute: Int, requestsInFlight: Int, quotaRate: Double, problems: [String]) {
        self.counts = counts
        self.sentLastMinute = sentLastMinute
        self.requestsInFlight = requestsInFlight
        self.quotaRate = quotaRate
        self.problems = problems
    }
}

/// The fleet's shared quota in `GET /v1/queue/stats` (`fleet.postgresURL` set).
public struct FleetStats: Codable, Sendable, Equatable {
    /// This daemon's name in the fleet (`fleet.hostName`).
    public var host: String
    /// The database, without its password.
    public var database: String
    /// Whether the quota is shared now (`false`: the database is not answering and this daemon
    /// goes on at its fallback share).
    public var shared: Bool
    /// Why it is not shared, when it is not.
    public var problem: String?
    public var instances: [FleetInstance]

    public init(host: String, database: String, shared: Bool, problem: String?, instances: [FleetInstance]) {
        self.host = host
        self.database = database
        self.shared = shared
        self.problem = problem
        self.instances = instances
    }
}

/// One instance's shared bucket and the hosts that sent for it in the last minute.
public struct FleetInstance: Codable, Sendable, Equatable {
    /// The configured name on this daemon.
    public var name: String
    /// The key the fleet shares (`instances.NAME.id`).
    public var id: String
    /// The shared rate now (requests per second; lower than configured after a 429 anywhere).
    public var rate: Double
    /// This daemon's rate while the database does not answer.
    public var fallbackRate: Double
    public var members: [FleetMember]

    public init(name: String, id: String, rate: Double, fallbackRate: Double, members: [FleetMember]) {
        self.name = name
        self.id = id
        self.rate = rate
        self.fallbackRate = fallbackRate
        self.members = members
    }
}

public struct FleetMember: Codable, Sendable, Equatable {
    public var host: String
    public var lastSeen: Date
    /// Requests per second granted to it, averaged over about the last minute.
    public var recentRate: Double
    /// Its part of the fleet's recent requests, 0 to 1.
    public var share: Double

    public init(host: String, lastSeen: Date, recentRate: Double, share: Double) {
        self.host = host
        self.lastSeen = lastSeen
        self.recentRate = recentRate
        self.share = share
    }
}

/// One peer's part of the outbox (`stats`' `peers`).
public struct PeerStats: Codable, Sendable, Equatable {
    /// The user's id; `nil` for items whose submitter is not known.
    public var uid: Int64?
    /// Queued or sending.
    public var waiting: Int
    public var sentLastMinute: Int

    public init(uid: Int64?, waiting: Int, sentLastMinute: Int) {
        self.uid = uid
        self.waiting = waiting
        self.sentLastMinute = sentLastMinute
    }
}

/// The optional body of `POST /v1/events/{clientToken}/retry`: the connection token to send the
/// item with. A failed or expired item's own token is erased when it ends, so a retry of an item
/// of a chat named by a connection token needs a current one.
public struct RetrySubmission: Codable, Sendable, Equatable {
    public var connectionToken: String?

    public init(connectionToken: String?) {
        self.connectionToken = connectionToken
    }
}
