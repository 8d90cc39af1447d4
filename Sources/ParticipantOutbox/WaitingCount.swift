import Synchronization

/// The number of waiting events, shared by every copy of the ``Outbox``.
final class WaitingCount: Sendable {
    private let count: Atomic<Int>

    init(_ initial: Int) {
        count = Atomic(initial)
    }

    var value: Int { count.load(ordering: .relaxed) }

    /// Throws ``OutboxError/full`` when `capacity` events wait, counting `pending` ones a
    /// transaction not yet committed adds: one more may not be queued.
    func ensureRoom(capacity: Int, pending: Int = 0) throws {
        guard value + pending < capacity else { throw OutboxError.full(capacity: capacity) }
    }

    func add(_ delta: Int) {
        count.add(delta, ordering: .relaxed)
    }
}
