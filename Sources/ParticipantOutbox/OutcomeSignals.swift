import Synchronization

/// Lets a request wait for the sender to record the outcome of an attempt at one event, without
/// polling the database: `POST /participant/event` waits this way for delivery.
///
/// Each registration is a ``Doorbell``, rung when an outcome for its ClientToken is recorded. A
/// waiter registers before it reads the event's state, so an outcome recorded between that read
/// and the wait is not missed: the bell remembers the ring.
package final class OutcomeSignals: Sendable {
    package struct Registration: Sendable {
        let clientToken: String
        let id: UInt64
        let bell: Doorbell
    }

    private let bells = Mutex<[String: [UInt64: Doorbell]]>([:])
    private let nextID = Atomic<UInt64>(0)
    private let clock: any Clock<Duration>

    /// - Parameter clock: the clock a wait's timeout runs on.
    package init(clock: any Clock<Duration> = ContinuousClock()) {
        self.clock = clock
    }

    package func register(_ clientToken: String) -> Registration {
        let registration = Registration(clientToken: clientToken, id: nextID.add(1, ordering: .relaxed).newValue, bell: Doorbell())
        bells.withLock { $0[clientToken, default: [:]][registration.id] = registration.bell }
        return registration
    }

    /// An outcome for `clientToken` was recorded: rings the bell of each of its registrations.
    package func notify(_ clientToken: String) {
        let ringing = bells.withLock { bells in bells[clientToken].map { Array($0.values) } ?? [] }
        for bell in ringing { bell.ring() }
    }

    /// Returns when the registration is signalled (before this call too), after `timeout`, or when
    /// the task is cancelled; the registration ends either way.
    package func wait(_ registration: Registration, timeout: Duration) async {
        await registration.bell.wait(timeout: timeout, on: clock)
        end(registration)
    }

    /// Ends a registration without waiting.
    package func end(_ registration: Registration) {
        bells.withLock { bells in
            bells[registration.clientToken]?[registration.id] = nil
            if bells[registration.clientToken]?.isEmpty == true { bells[registration.clientToken] = nil }
        }
    }

    /// How many registrations are open (for tests: none may leak).
    package var openRegistrations: Int { bells.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}
