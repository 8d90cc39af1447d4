import Synchronization

/// Calls `onReady` once every listener has said it is bound, with each one's address.
final class Readiness: Sendable {
    private let state: Mutex<[String: String]>
    private let expected: Int
    private let onReady: @Sendable ([String: String]) -> Void

    init(expected: Int, onReady: @escaping @Sendable ([String: String]) -> Void) {
        self.state = Mutex([:])
        self.expected = expected
        self.onReady = onReady
    }

    func ready(_ listener: String, address: String) {
        let complete = state.withLock { addresses -> [String: String]? in
            addresses[listener] = address
            return addresses.count == expected ? addresses : nil
        }
        if let complete { onReady(complete) }
    }
}
