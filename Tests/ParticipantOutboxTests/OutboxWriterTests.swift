@testable import ParticipantOutbox
import Testing

/// The group commit's size: bounded in items, not only in writes.
@Suite struct OutboxWriterTests {
    @Test("A transaction takes writes up to 4,096 items by weight, at most 4,096 writes, and always the first", arguments: [
        ([1, 1, 1], 3),
        (Array(repeating: 500, count: 10), 8),      // 8 x 500 = 4,000; a ninth would be 4,500
        ([10_000, 1], 1),                            // one heavy write goes alone
        ([1, 10_000], 1),                            // and waits for the next transaction behind a light one
        (Array(repeating: 1, count: 5_000), 4_096),  // the writes' own bound
        ([], 0),
    ])
    func batchLength(weights: [Int], expected: Int) {
        #expect(OutboxWriter.batchLength(weights: weights, maxWeight: OutboxWriter.maxBatchWeight, maxWrites: OutboxWriter.maxBatchSize) == expected)
    }
}
