import Synchronization

/// The number of waiting events, shared by every copy of the ``Outbox``.
final class WaitingCount: Sendable {
    private let count: Atomic<Int>

    init(_ initial: Int) {
        count = Atomic(initial)
    }

    var value: Int { count.load(ordering: .relaxed) }

    /// Throws ``OutboxError/full`` when `capacity` events wait: one more may not be queued.
    func ensureRoom(capacity: Int) throws {
        guard value < capacity else { throw OutboxError.full(capacity: capacity) }
    }

    func add(_ delta: Int) {
        count.add(delta, ordering: .relaxed)
    }
}
