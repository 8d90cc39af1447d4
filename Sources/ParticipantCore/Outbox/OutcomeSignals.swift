import Synchronization

/// Lets a request wait for the sender to record the outcome of an attempt at one event, without
/// polling the database: `POST /participant/event` waits this way for delivery.
///
/// A waiter registers before it reads the event's state, so an outcome recorded between that
/// read and the wait is not missed: the registration remembers the signal.
final class OutcomeSignals: Sendable {
    struct Registration: Sendable {
        let clientToken: String
        let id: UInt64
    }

    private enum Slot {
        case pending
        case signalled
        case waiting(CheckedContinuation<Void, Never>)
    }

    private let slots = Mutex<[String: [UInt64: Slot]]>([:])
    private let nextID = Atomic<UInt64>(0)

    func register(_ clientToken: String) -> Registration {
        let id = nextID.add(1, ordering: .relaxed).newValue
        slots.withLock { $0[clientToken, default: [:]][id] = .pending }
        return Registration(clientToken: clientToken, id: id)
    }

    /// An outcome for `clientToken` was recorded: wakes its waiters, marks its registrations.
    func notify(_ clientToken: String) {
        let continuations = slots.withLock { slots -> [CheckedContinuation<Void, Never>] in
            guard var entries = slots[clientToken] else { return [] }
            var continuations: [CheckedContinuation<Void, Never>] = []
            for (id, slot) in entries {
                if case .waiting(let continuation) = slot { continuations.append(continuation) }
                entries[id] = .signalled
            }
            slots[clientToken] = entries
            return continuations
        }
        for continuation in continuations { continuation.resume() }
    }

    /// Returns when the registration is signalled (before this call too), after `timeout`, or when
    /// the task is cancelled; the registration ends either way.
    func wait(_ registration: Registration, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await self.signalled(registration) }
            await group.next()
            group.cancelAll()
        }
        end(registration)
    }

    /// Ends a registration without waiting.
    func end(_ registration: Registration) {
        slots.withLock { slots in
            slots[registration.clientToken]?[registration.id] = nil
            if slots[registration.clientToken]?.isEmpty == true { slots[registration.clientToken] = nil }
        }
    }

    /// How many registrations are open (for tests: none may leak).
    var openRegistrations: Int { slots.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    private func signalled(_ registration: Registration) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = slots.withLock { slots -> Bool in
                    guard let slot = slots[registration.clientToken]?[registration.id] else { return true }
                    if case .signalled = slot { return true }
                    if Task.isCancelled { return true }
                    slots[registration.clientToken]?[registration.id] = .waiting(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = slots.withLock { slots -> CheckedContinuation<Void, Never>? in
                guard case .waiting(let continuation)? = slots[registration.clientToken]?[registration.id] else { return nil }
                slots[registration.clientToken]?[registration.id] = .pending
                return continuation
            }
            continuation?.resume()
        }
    }
}
