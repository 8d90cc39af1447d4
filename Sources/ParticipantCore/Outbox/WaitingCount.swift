import Synchronization

/// The number of waiting events, shared by every copy of the ``Outbox``.
final class WaitingCount: Sendable {
    private let count: Atomic<Int>

    init(_ initial: Int) {
        count = Atomic(initial)
    }

    var value: Int { count.load(ordering: .relaxed) }

    func add(_ delta: Int) {
        count.add(delta, ordering: .relaxed)
    }
}
