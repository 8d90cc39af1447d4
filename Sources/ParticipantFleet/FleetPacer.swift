import ParticipantDelivery
import ParticipantWire
import Synchronization

/// One instance's pacing when its quota is shared by a fleet: a ``ParticipantDelivery/QuotaGate``
/// whose tokens are granted by the fleet's database (through ``FleetQuota``), a few at a time, as
/// the sender asks for more than it has.
///
/// While the database does not answer, it paces on its own at a safe share of the rate
/// (``FleetRules/fallbackRate(rate:hostsSeen:share:)``), and it says so in health.
public final class FleetPacer: QuotaGate {
    public let instance: String
    /// The key the fleet shares this instance's bucket under.
    public let id: String
    private let fallbackShare: Double
    private let state: Mutex<State>
    /// Called when tokens arrive (wakes the sender).
    private let onTokens = Mutex<@Sendable () -> Void>({})
    /// Called when the sender runs out (wakes ``FleetQuota``).
    private let onWant = Mutex<@Sendable () -> Void>({})

    struct State {
        var configuration: QuotaPacer.Configuration
        /// Tokens granted and not yet used, and when the last grant came (a stopwatch reading).
        var granted = 0
        var grantedAt = Duration.zero
        /// The sender asked for more than it had, and did not give any back since: grant more.
        var wanting = false
        var throttles = 0
        var successes = 0
        /// The shared rate the database last gave.
        var sharedRate: Double
        /// `nil` while the database answers; otherwise the local bucket used meanwhile.
        var fallback: QuotaPacer?
        var problem: String?
        var hostsSeen = 1
        /// Before the database's first answer or failure: nothing is sent (at most a statement
        /// timeout), rather than a whole burst from every host that starts at once.
        var connecting = true
        /// Paced alone since the last grant: the shared bucket's saved tokens were spent meanwhile.
        var afterFallback = false
        /// Since when the sender has wanted tokens and no grant gave any; `nil`: it has what it needs.
        var wantingSince: Duration?
        /// Pacing alone because the database answers but grants nothing (a row that grants
        /// nothing): only a grant of tokens ends it, not any answer.
        var starved = false
    }

    public init(instance: String, id: String, configuration: QuotaPacer.Configuration, fallbackShare: Double, now: Duration) {
        self.instance = instance
        self.id = id
        self.fallbackShare = fallbackShare
        var state = State(configuration: configuration, sharedRate: configuration.rate)
        state.problem = "connecting to the fleet's database"
        self.state = Mutex(state)
    }

    public func whenTokensArrive(_ wake: @escaping @Sendable () -> Void) {
        onTokens.withLock { $0 = wake }
    }

    func whenWanting(_ wake: @escaping @Sendable () -> Void) {
        onWant.withLock { $0 = wake }
    }

    // MARK: QuotaGate

    public var configuration: QuotaPacer.Configuration { state.withLock { $0.configuration } }

    public var currentRate: Double {
        state.withLock { state in state.fallback?.currentRate ?? state.sharedRate }
    }

    public func reconfigure(_ configuration: QuotaPacer.Configuration, now: Duration) {
        state.withLock { state in
            state.configuration = configuration
            state.sharedRate = min(state.sharedRate, configuration.rate)
            state.fallback?.reconfigure(FleetRules.fallback(configuration, hostsSeen: state.hostsSeen, share: fallbackShare), now: now)
        }
    }

    public func take(upTo wanted: Int, now: Duration) -> Int {
        let (taken, startedWanting) = state.withLock { state -> (Int, Bool) in
            guard state.configuration.isEnabled else { return (wanted, false) }
            if let fallback = state.fallback { return (fallback.take(upTo: wanted, now: now), false) }
            if now - state.grantedAt > FleetRules.grantLifetime || state.connecting { state.granted = 0 }
            let taken = min(wanted, state.granted)
            state.granted -= taken
            let startedWanting = taken < wanted && !state.wanting
            if taken < wanted {
                state.wanting = true
                if state.wantingSince == nil { state.wantingSince = now }
            }
            return (taken, startedWanting)
        }
        if startedWanting { onWant.withLock { $0 }() }
        return taken
    }

    public func giveBack(_ count: Int) {
        guard count > 0 else { return }
        state.withLock { state in
            if let fallback = state.fallback { return fallback.giveBack(count) }
            // Fewer events were due than tokens taken: no need for more now.
            state.granted += count
            state.wanting = false
        }
    }

    public func tokens(now: Duration) -> Double {
        state.withLock { state in
            if let fallback = state.fallback { return fallback.tokens(now: now) }
            return now - state.grantedAt > FleetRules.grantLifetime ? 0 : Double(state.granted)
        }
    }

    public func untilNextToken(now: Duration) -> Duration {
        state.withLock { state in
            if let fallback = state.fallback { return fallback.untilNextToken(now: now) }
            // Tokens arrive with a grant, which wakes the sender; this is only a bound.
            return state.granted > 0 ? .zero : FleetRules.grantLifetime
        }
    }

    public func recordThrottle() {
        state.withLock { state in
            state.throttles += 1
            state.granted = min(state.granted, 1)
            state.fallback?.recordThrottle()
        }
    }

    public func recordSuccess() {
        state.withLock { state in
            state.successes += 1
            state.fallback?.recordSuccess()
        }
    }

    public var problem: String? { state.withLock { $0.problem } }

    // MARK: For FleetQuota

    /// What to ask the database for now, if anything: the 429s and successes to report are taken.
    func nextRequest() -> GrantRequest? {
        state.withLock { state -> GrantRequest? in
            guard state.configuration.isEnabled else { return nil }
            let hasNews = state.throttles > 0 || state.successes > 0
            guard state.wanting || state.fallback != nil || hasNews else { return nil }
            let want = state.wanting || state.fallback != nil ? FleetRules.grantSize(rate: state.sharedRate) : 0
            defer {
                state.throttles = 0
                state.successes = 0
            }
            return GrantRequest(
                id: id, want: want, rate: state.configuration.rate, burst: state.configuration.burst,
                minimumRate: state.configuration.minimumRate, throttles: state.throttles, successes: state.successes,
                spentElsewhere: state.afterFallback
            )
        }
    }

    /// The database answered a grant. What it says is not trusted blindly: a grant is clamped to
    /// the burst and the shared rate to the configured rate (a row that grants more would remove
    /// the pacing), and a database that grants nothing for ``FleetRules/starvationLimit`` while
    /// events wait is treated as down: the fallback share, health degraded, until it grants again.
    func granted(_ offered: Int, sharedRate offeredRate: Double, now: Duration) {
        let (tokens, sharedRate) = state.withLock { state in
            (min(max(0, offered), state.configuration.burst), min(max(0, offeredRate), state.configuration.rate))
        }
        if tokens == 0 {
            let starving = state.withLock { state -> Bool in
                state.starved || state.wantingSince.map { now - $0 >= FleetRules.starvationLimit } == true
            }
            if starving {
                databaseFailed(problem: "the fleet's database granted no request for \(FleetRules.starvationLimit.components.seconds) s while events waited; pacing alone at the fallback share", now: now)
                state.withLock { $0.starved = true }
                return
            }
        }
        let resumed = answered()
        state.withLock { state in
            state.sharedRate = sharedRate
            state.granted = (now - state.grantedAt > FleetRules.grantLifetime ? 0 : state.granted) + tokens
            state.grantedAt = now
            state.afterFallback = false
            if tokens > 0 {
                state.wanting = false
                state.wantingSince = nil
            }
        }
        if tokens > 0 && !resumed { onTokens.withLock { $0 }() }
    }

    /// The database answers: the quota is shared (again). Returns whether it was not before, in
    /// which case the sender is woken to ask for tokens.
    @discardableResult
    func answered() -> Bool {
        let resumed = state.withLock { state -> Bool in
            let resumed = state.fallback != nil || state.connecting
            state.connecting = false
            state.fallback = nil
            state.problem = nil
            state.starved = false
            // Back from pacing alone: the wait for a grant starts again.
            if resumed { state.wantingSince = nil }
            return resumed
        }
        if resumed { onTokens.withLock { $0 }() }
        return resumed
    }

    /// A grant failed: the 429s and successes it carried are reported with the next one.
    func notReported(_ request: GrantRequest) {
        state.withLock { state in
            state.throttles += request.throttles
            state.successes += request.successes
        }
    }

    /// The database does not answer: pace on our own until it does.
    func databaseFailed(problem: String, now: Duration) {
        state.withLock { state in
            state.problem = problem
            state.connecting = false
            state.afterFallback = true
            if state.fallback == nil {
                state.granted = 0
                var configuration = FleetRules.fallback(state.configuration, hostsSeen: state.hostsSeen, share: fallbackShare)
                configuration.rate = min(configuration.rate, state.sharedRate * FleetRules.share(hostsSeen: state.hostsSeen, share: fallbackShare))
                // Empty at first: the fleet may have spent the service's bucket a moment ago.
                state.fallback = QuotaPacer(configuration: configuration, now: now, tokens: 0)
            }
        }
        onTokens.withLock { $0 }()
    }

    /// Hosts seen for this instance in the last minute (this one included).
    func sawHosts(_ count: Int) {
        state.withLock { $0.hostsSeen = max(1, count) }
    }

    var fallbackRate: Double {
        state.withLock { state in
            state.fallback?.configuration.rate ?? FleetRules.fallback(state.configuration, hostsSeen: state.hostsSeen, share: fallbackShare).rate
        }
    }
}

/// The fleet's decisions, pure.
public enum FleetRules {
    /// Unused granted tokens are dropped after this long: a host holds at most its last grant,
    /// and not for long.
    public static let grantLifetime: Duration = .milliseconds(500)

    /// A database that answers and grants nothing for this long while events wait is treated as
    /// down (the fallback share), as one that does not answer is.
    public static let starvationLimit: Duration = .seconds(1)

    /// Tokens asked for at once: what the shared rate gives in a quarter of a second, at least 1.
    public static func grantSize(rate: Double) -> Int {
        max(1, Int((rate * 0.25).rounded(.up)))
    }

    /// The part of the rate one host uses while the database does not answer: `share` when set
    /// (above 0), else 1 / the hosts seen in the last minute.
    public static func share(hostsSeen: Int, share: Double) -> Double {
        share > 0 ? share : 1 / Double(max(1, hostsSeen))
    }

    /// The local bucket used meanwhile: the rate and burst times ``share(hostsSeen:share:)``.
    public static func fallback(_ configuration: QuotaPacer.Configuration, hostsSeen: Int, share: Double) -> QuotaPacer.Configuration {
        let part = Self.share(hostsSeen: hostsSeen, share: share)
        var fallback = configuration
        fallback.rate = configuration.rate * part
        fallback.burst = max(1, Int((Double(configuration.burst) * part).rounded(.down)))
        fallback.minimumRate = min(configuration.minimumRate, fallback.rate)
        return fallback
    }

    /// How long before the next attempt to reach the database after `failures` failures in a row:
    /// 100 ms, doubling, at most 5 s.
    public static func reconnectDelay(failures: Int) -> Duration {
        min(.seconds(5), .milliseconds(100) * (1 << min(max(0, failures - 1), 20)))
    }
}
