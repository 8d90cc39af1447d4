import ParticipantOutbox
import ParticipantWire
import Synchronization

/// What the sender asks before each request: a token bucket of this daemon's own
/// (``QuotaPacer``), or one shared by a fleet of daemons (ParticipantFleet's `FleetPacer`).
/// Time is passed in as a ``Stopwatch`` reading: time since a fixed point on a monotonic clock.
public protocol QuotaGate: Sendable {
    var configuration: QuotaPacer.Configuration { get }
    /// The rate the bucket refills at now (lower than configured after throttling).
    var currentRate: Double { get }
    /// New settings (a reload).
    func reconfigure(_ configuration: QuotaPacer.Configuration, now: Duration)
    /// Takes up to `wanted` whole tokens now; returns how many it took.
    func take(upTo wanted: Int, now: Duration) -> Int
    /// Gives back tokens taken but not used.
    func giveBack(_ count: Int)
    /// Tokens available now.
    func tokens(now: Duration) -> Double
    /// How long until the next whole token may be there; zero when one is.
    func untilNextToken(now: Duration) -> Duration
    /// The service answered 429: slow down.
    func recordThrottle()
    /// The service accepted a request.
    func recordSuccess()
    /// Why pacing is not as it should be (a fleet's database that does not answer); `nil`: fine.
    var problem: String? { get }
    /// Whether no request may start before the time the sender already waits for (a local bucket
    /// out of tokens): a new event then needs no round of the sender's.
    func isWaitingForToken(now: Duration) -> Bool
    /// A start: the previous run's last request on this quota started `secondsAgo` seconds ago,
    /// and the service's bucket may have been empty then. A bucket of this daemon's own keeps no
    /// more than the service's has refilled since; one a fleet shares knows already.
    func resume(lastRequestSecondsAgo secondsAgo: Double, now: Duration)
}

extension QuotaGate {
    public var problem: String? { nil }
    public func isWaitingForToken(now: Duration) -> Bool { false }
    public func resume(lastRequestSecondsAgo secondsAgo: Double, now: Duration) {}
}

/// A client-side token bucket in front of the service: SendEvent's quota is 10 requests per
/// second with a burst of 15 per Connect instance, and a daemon that keeps to it causes no 429s
/// of its own.
///
/// On a 429 the rate drops multiplicatively (x0.7, as the AWS SDKs' adaptive mode does, never below
/// `minimumRate`) and then climbs back linearly on successes: 5% of the configured rate per
/// success, so a full recovery takes about twenty requests.
///
/// Time is passed in (a ``Stopwatch`` reading) so the bucket is tested without sleeping.
public final class QuotaPacer: QuotaGate {
    public struct Configuration: Sendable, Equatable {
        /// Requests per second at most; 0 turns pacing off.
        public var rate: Double = 10
        public var burst: Int = 15
        /// The floor of the adaptive decrease.
        public var minimumRate: Double = 0.5

        public init(rate: Double = 10, burst: Int = 15, minimumRate: Double = 0.5) {
            self.rate = rate
            self.burst = burst
            self.minimumRate = minimumRate
        }

        public var isEnabled: Bool { rate > 0 }
    }

    static let decreaseFactor = 0.7
    static let recoveryShare = 0.05

    private struct State {
        var configuration: Configuration
        var tokens: Double
        var currentRate: Double
        var lastRefill: Duration
    }

    private let state: Mutex<State>

    /// - Parameter tokens: the tokens at the start; `nil`: a full bucket (the burst).
    public init(configuration: Configuration, now: Duration, tokens: Double? = nil) {
        let tokens = min(Double(configuration.burst), tokens ?? Double(configuration.burst))
        self.state = Mutex(State(configuration: configuration, tokens: tokens, currentRate: configuration.rate, lastRefill: now))
    }

    public var configuration: Configuration { state.withLock { $0.configuration } }

    /// New settings (a reload): the rate starts at the new one, saved tokens are kept up to the new burst.
    public func reconfigure(_ configuration: Configuration, now: Duration) {
        state.withLock { state in
            refill(&state, now: now)
            state.configuration = configuration
            state.currentRate = configuration.rate
            state.tokens = min(state.tokens, Double(configuration.burst))
        }
    }

    /// The rate the bucket refills at now (lower than configured after throttling).
    public var currentRate: Double { state.withLock { $0.currentRate } }

    /// Takes up to `wanted` whole tokens now; returns how many it took.
    public func take(upTo wanted: Int, now: Duration) -> Int {
        return state.withLock { state in
            guard state.configuration.isEnabled else { return wanted }
            refill(&state, now: now)
            let taken = max(0, min(wanted, Int(state.tokens)))
            state.tokens -= Double(taken)
            return taken
        }
    }

    /// Gives back tokens taken but not used.
    public func giveBack(_ count: Int) {
        guard count > 0 else { return }
        state.withLock { state in
            guard state.configuration.isEnabled else { return }
            state.tokens = min(Double(state.configuration.burst), state.tokens + Double(count))
        }
    }

    /// Tokens in the bucket now.
    public func tokens(now: Duration) -> Double {
        state.withLock { state in
            refill(&state, now: now)
            return state.tokens
        }
    }

    /// How long until the next whole token; zero when one is there.
    public func untilNextToken(now: Duration) -> Duration {
        return state.withLock { state in
            guard state.configuration.isEnabled else { return .zero }
            refill(&state, now: now)
            guard state.tokens < 1 else { return .zero }
            return .seconds(1) * (1 - state.tokens) / state.currentRate
        }
    }

    /// Out of tokens now. The sender's last round left the bucket so (only rounds take tokens),
    /// and a round that leaves it so sleeps until the next token at the latest.
    public func isWaitingForToken(now: Duration) -> Bool {
        state.withLock { state in
            guard state.configuration.isEnabled else { return false }
            refill(&state, now: now)
            return state.tokens < 1
        }
    }

    /// A start after a run whose last request on this quota started `secondsAgo` seconds ago
    /// (a restart, or a crash): the bucket keeps no more than `secondsAgo` x the rate, what the
    /// service's has refilled at least since, so a restart's first burst is no 429 storm. A
    /// negative `secondsAgo` (the wall clock went back) empties it.
    public func resume(lastRequestSecondsAgo secondsAgo: Double, now: Duration) {
        state.withLock { state in
            guard state.configuration.isEnabled else { return }
            refill(&state, now: now)
            state.tokens = min(state.tokens, max(0, secondsAgo) * state.currentRate)
        }
    }

    /// The service answered 429: slow down.
    public func recordThrottle() {
        state.withLock { state in
            guard state.configuration.isEnabled else { return }
            state.currentRate = max(state.configuration.minimumRate, state.currentRate * Self.decreaseFactor)
            // Whatever was saved up was saved at a rate the service did not grant.
            state.tokens = min(state.tokens, 1)
        }
    }

    /// The service accepted a request: climb back towards the configured rate.
    public func recordSuccess() {
        state.withLock { state in
            guard state.configuration.isEnabled else { return }
            state.currentRate = min(state.configuration.rate, state.currentRate + state.configuration.rate * Self.recoveryShare)
        }
    }

    private func refill(_ state: inout State, now: Duration) {
        let elapsed = max(0, (now - state.lastRefill).timeInterval)
        guard state.configuration.isEnabled else { return }
        state.tokens = min(Double(state.configuration.burst), state.tokens + elapsed * state.currentRate)
        state.lastRefill = now
    }
}
