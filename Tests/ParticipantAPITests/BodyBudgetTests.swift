@testable import ParticipantAPI
import ParticipantTestSupport
import Synchronization
import Testing

/// The bytes of request bodies held at once: beyond the budget, requests wait their turn.
@Suite struct BodyBudgetTests {
    @Test("A reservation beyond what is free waits until bytes are given back; one larger than the budget goes alone")
    func waitsForRoom() async throws {
        let budget = BodyBudget(bytes: 100)
        let started = Mutex(false)
        let order = Mutex<[String]>([])
        let holder = Task {
            try await budget.reserving(80) {
                started.withLock { $0 = true }
                try await eventually(timeout: .seconds(10), "second waiting") { budget.available == 20 && order.withLock { $0.isEmpty } }
                try await Task.sleep(for: .milliseconds(50))
                order.withLock { $0.append("first done") }
            }
        }
        try await eventually(timeout: .seconds(10), "first reserved") { started.withLock { $0 } }
        try await budget.reserving(50) { order.withLock { $0.append("second ran") } }
        try await holder.value
        #expect(order.withLock { $0 } == ["first done", "second ran"])
        #expect(budget.available == 100)
        // Larger than the whole budget: it takes all of it, alone.
        try await budget.reserving(1_000) { #expect(budget.available == 0) }
        #expect(budget.available == 100)
    }

    @Test("A waiting reservation cancelled with its task gives nothing back twice and lets the next one through")
    func cancelledWaiter() async throws {
        let budget = BodyBudget(bytes: 100)
        let release = Mutex(false)
        let holder = Task {
            try await budget.reserving(100) {
                try await eventually(timeout: .seconds(10), "released") { release.withLock { $0 } }
            }
        }
        try await eventually(timeout: .seconds(10), "held") { budget.available == 0 }
        let waiter = Task { try await budget.reserving(60) { } }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        release.withLock { $0 = true }
        try await holder.value
        #expect(budget.available == 100)
        try await budget.reserving(100) { #expect(budget.available == 0) }
    }

    @Test("tryReserve takes only free bytes no one waits for; what it took, given back, lets a waiter through")
    func tryReserve() async throws {
        let budget = BodyBudget(bytes: 100)
        #expect(budget.tryReserve(0) == 1, "an empty body still holds a byte")
        #expect(budget.tryReserve(60) == 60)
        #expect(budget.tryReserve(60) == nil, "39 bytes free")
        #expect(budget.available == 39)
        let waiter = Task { try await budget.reserving(50) { budget.available } }
        try await eventually(timeout: .seconds(10), "the waiter queued") { budget.tryReserve(1).map { budget.release($0); return false } ?? true }
        #expect(budget.tryReserve(10) == nil, "first come first served: a request waits")
        budget.release(60)
        #expect(try await waiter.value == 49, "the waiter ran with 50 of the 99 free bytes")
        budget.release(1)
        #expect(budget.available == 100)
    }
}
