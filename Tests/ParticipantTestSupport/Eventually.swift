import Foundation
import ParticipantWire

package struct TimedOut: Error, CustomStringConvertible {
    package var description: String

    package init(description: String) {
        self.description = description
    }
}

/// Polls `condition` every 10 ms until it holds; fails after `timeout`.
package func eventually(timeout: Duration, _ what: String = "condition", _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let end = clock.now.advanced(by: timeout)
    while clock.now < end {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    if try await condition() { return }
    throw TimedOut(description: "\(what) did not hold within \(timeout)")
}

/// A receipt's content for a message id.
package func receipt(_ messageId: String) -> String {
    "{\"messageId\":\"\(messageId)\"}"
}

extension EventContentType {
    /// A content that is valid for this type.
    package func sampleContent(_ id: String = UUID().uuidString) -> String? {
        isReceipt ? receipt(id) : nil
    }
}
