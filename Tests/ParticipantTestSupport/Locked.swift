import Synchronization

/// A value shared between tasks and threads, behind a lock: a class so closures can capture it.
package final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    package init(_ value: Value) {
        mutex = Mutex(value)
    }

    package func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T {
        mutex.withLock { body(&$0) }
    }

    package var value: Value { withLock { $0 } }
}

/// Counts calls from any thread.
package final class Counter: Sendable {
    private let count = Locked(0)
    package init() {}
    package func next() -> Int { count.withLock { $0 += 1; return $0 } }
}
