import Synchronization

/// The one wait-with-timeout of the daemon: a task waits until the bell rings, its timeout passes,
/// or it is cancelled. The sender waits on one for work (an event accepted, a delivery finished);
/// a SendEvent request waits on one for its event's outcome (``OutcomeSignals``).
///
/// A ring with nobody waiting is remembered, so a ring between two waits is never lost. One task
/// waits at a time.
package final class Doorbell: Sendable {
    private let state = Mutex<State>(State())

    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    package init() {}

    package func ring() {
        let waiter = state.withLock { state in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil as CheckedContinuation<Void, Never>?
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns when the bell rings (or rang since the last wait), after `timeout`, or when the
    /// task is cancelled, whichever comes first.
    /// - Parameter clock: the clock the timeout is slept on (a test's manual clock in tests).
    package func wait(timeout: Duration, on clock: any Clock<Duration>) async {
        // Rung since the last wait (the sender's next round under load, as events arrive during
        // one): back at once, without the two child tasks and the timer the wait would start and
        // cancel (BENCHMARKS.md, "Issue 31, eighth round").
        let rung = state.withLock { state in
            defer { state.rung = false }
            return state.rung
        }
        if rung { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForRing() }
            group.addTask { try? await clock.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForRing() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.rung {
                        state.rung = false
                        return true
                    }
                    if Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
