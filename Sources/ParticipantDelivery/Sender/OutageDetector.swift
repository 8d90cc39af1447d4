import Foundation
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// Tells when the service as a whole is down, as a mail queue suspends a dead destination.
///
/// After `threshold` attempts in a row fail without an answer from the service (refused or reset
/// connections, timeouts, 5xx; a 429 is an answer), sending is suspended: only one probe at a time
/// goes out, the first after 1 s, then at doubling intervals up to `maxProbeInterval`. Any answer
/// from the service ends the outage.
final class OutageDetector: Sendable {
    struct Configuration: Sendable, Equatable {
        var threshold = 5
        var firstProbeInterval: Duration = .seconds(1)
        var maxProbeInterval: Duration = .seconds(30)
    }

    struct Outage: Sendable, Equatable {
        var since: Date
        var failures: Int
        var lastError: String
    }

    private struct State {
        var consecutiveFailures = 0
        var outage: Outage?
        var probeInterval: Duration = .zero
        var nextProbe: Duration = .zero
    }

    let configuration: Configuration
    private let state = Mutex(State())

    init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The outage under way, if any.
    var outage: Outage? { state.withLock { $0.outage } }

    /// How many attempts may start now (`wanted`, or at most one probe during an outage), at
    /// `now` (a ``Stopwatch`` reading). Asking spends nothing: see ``probeStarted(now:)``.
    func allowedAttempts(_ wanted: Int, inFlight: Int, now: Duration) -> Int {
        state.withLock { state in
            guard state.outage != nil else { return wanted }
            return inFlight == 0 && now >= state.nextProbe ? min(wanted, 1) : 0
        }
    }

    /// An attempt started; during an outage it was the probe, and the next one waits longer.
    /// Only an attempt actually made moves the schedule, so an outage with nothing to send does
    /// not stretch the interval.
    func probeStarted(now: Duration) {
        state.withLock { state in
            guard state.outage != nil else { return }
            state.nextProbe = now + state.probeInterval
            state.probeInterval = min(configuration.maxProbeInterval, state.probeInterval * 2)
        }
    }

    /// An operator asked to send now (`participantctl flush`): the next probe may go at once.
    func probeNow() {
        state.withLock { state in
            guard state.outage != nil else { return }
            state.nextProbe = .zero
        }
    }

    /// How long until the next probe may go; nil when there is no outage.
    func untilProbe(now: Duration) -> Duration? {
        state.withLock { state in state.outage == nil ? nil : max(.zero, state.nextProbe - now) }
    }

    /// An attempt got no answer from the service. Returns the outage if this one began it.
    func recordNoAnswer(_ error: String, at date: Date, now: Duration) -> Outage? {
        state.withLock { state in
            state.consecutiveFailures += 1
            if var outage = state.outage {
                outage.failures = state.consecutiveFailures
                outage.lastError = error
                state.outage = outage
                return nil
            }
            guard state.consecutiveFailures >= configuration.threshold else { return nil }
            let outage = Outage(since: date, failures: state.consecutiveFailures, lastError: error)
            state.outage = outage
            state.probeInterval = configuration.firstProbeInterval
            state.nextProbe = now + configuration.firstProbeInterval
            return outage
        }
    }

    /// The service answered. Returns the outage this ended, if any.
    func recordAnswer() -> Outage? {
        state.withLock { state in
            state.consecutiveFailures = 0
            defer { state.outage = nil }
            return state.outage
        }
    }
}
