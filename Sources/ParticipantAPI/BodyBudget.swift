import Synchronization

/// How many bytes of request bodies the daemon holds at once, across every connection
/// (`api.maxBodyMemoryMegabytes`): a request reserves its size (its `Content-Length`, else its
/// route's largest) before its body is read and decoded, and gives it back after. Beyond the
/// budget a request waits its turn, first come first served, and its body waits in the kernel's
/// socket buffer meanwhile (its connection is not read: backpressure), so 256 connections each
/// sending 2 MiB hold 64 MiB in the daemon, not 512. One request larger than the whole budget
/// still goes, alone.
///
/// Written here: no package of ours has an asynchronous semaphore (swift-async-algorithms has
/// none, and NIO's are for event loops); this one counts bytes and is cancelled with its task.
package final class BodyBudget: Sendable {
    let capacity: Int
    private let state: Mutex<State>

    private struct State {
        var available: Int
        var nextID = 0
        var waiting: [(id: Int, bytes: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    package init(bytes: Int) {
        capacity = max(1, bytes)
        state = Mutex(State(available: max(1, bytes)))
    }

    /// Runs `body` once `bytes` (at most the whole budget) are reserved for it, and frees them after.
    package func reserving<T>(_ bytes: Int, _ body: () async throws -> T) async throws -> T {
        let bytes = min(max(1, bytes), capacity)
        try await acquire(bytes)
        defer { release(bytes) }
        return try await body()
    }

    /// Reserves `bytes` (at most the whole budget) now if they are free and no request waits
    /// for room, and returns what was reserved, to be given back with ``release(_:)``; `nil`:
    /// nothing was reserved (the hot routes then leave the request to the router, which waits).
    package func tryReserve(_ bytes: Int) -> Int? {
        let bytes = min(max(1, bytes), capacity)
        return state.withLock { state -> Int? in
            guard state.waiting.isEmpty, state.available >= bytes else { return nil }
            state.available -= bytes
            return bytes
        }
    }

    /// Bytes free now (for tests).
    package var available: Int { state.withLock { $0.available } }

    private func acquire(_ bytes: Int) async throws {
        let id = state.withLock { state -> Int? in
            // First come first served: none passes those already waiting.
            if state.waiting.isEmpty && state.available >= bytes {
                state.available -= bytes
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { state -> Bool in
                    if Task.isCancelled { return true }
                    state.waiting.append((id, bytes, continuation))
                    return false
                }
                if cancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    resumeWaiters()
                }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index).continuation
            }
            continuation?.resume(throwing: CancellationError())
            resumeWaiters()
        }
    }

    /// Gives back what ``tryReserve(_:)`` reserved.
    package func release(_ bytes: Int) {
        state.withLock { $0.available += bytes }
        resumeWaiters()
    }

    /// Resumes the waiters at the head of the line that fit now.
    private func resumeWaiters() {
        let ready = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            var ready: [CheckedContinuation<Void, any Error>] = []
            while let first = state.waiting.first, first.bytes <= state.available {
                state.available -= first.bytes
                ready.append(state.waiting.removeFirst().continuation)
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }
}
