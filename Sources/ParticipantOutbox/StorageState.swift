import Logging
import Synchronization

/// Whether new events can be stored, as the latest submissions found: full from the first one
/// refused for lack of space until one is stored again. For health and for the log, which says
/// when it starts and ends, not once per refused event.
///
/// Submissions decide it, not every write: the sender's updates still fit in the room
/// `outbox.maxDatabaseMegabytes` keeps back, while new events are refused.
final class StorageState: Sendable {
    private struct Full {
        var since: ContinuousClock.Instant
        var reason: String
    }

    private let full = Mutex<Full?>(nil)
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Why new events cannot be stored now, or `nil`.
    var problem: String? {
        full.withLock { full in
            full.map { "the outbox's storage is full (\($0.reason)): new events are refused with 507 until space returns" }
        }
    }

    func submissionRefused(_ reason: String) {
        let started = full.withLock { full -> Bool in
            guard full == nil else { return false }
            full = Full(since: .now, reason: reason)
            return true
        }
        if started {
            logger.critical("Outbox storage full: new events are refused (507) until space returns", metadata: ["error": "\(reason)"])
        }
    }

    func eventStored() {
        guard let ended = full.withLock({ full -> Full? in
            defer { full = nil }
            return full
        }) else { return }
        logger.notice("Outbox storage available again: events are accepted", metadata: [
            "outbox.full_for_s": "\((ContinuousClock.now - ended.since).timeInterval)",
        ])
    }
}

/// When a submission looks the database's size up (`outbox.maxDatabaseMegabytes`): not at every
/// transaction, but once the items stored since the last look could have used half the room left
/// below 90% of the limit, counting each as large as an item can be. Far from the limit that is
/// thousands of items between looks; near it (or past 90%), every transaction. The look-up cost
/// as much as a tenth of an accepted event (BENCHMARKS.md, "Instructions").
final class SizeWatch: Sendable {
    /// More than any item adds to the file: 16 KiB of content, a 1,000-character token, the
    /// row's other columns and its index entries, rounded up.
    static let itemBytesBound: Int64 = 32 * 1024

    private let state = Mutex<(sinceCheck: Int64, allowance: Int64)>((0, 0))

    /// Whether this transaction must look the size up.
    var mustCheck: Bool { state.withLock { $0.sinceCheck >= $0.allowance } }

    /// An item was stored (counted even if its transaction is rolled back: a look-up comes sooner).
    func stored() { state.withLock { $0.sinceCheck += 1 } }

    /// The size was looked up: `roomBytes` remain below 90% of the limit (0 or less: none).
    func checked(roomBytes: Int64) {
        state.withLock { $0 = (0, max(0, roomBytes / 2) / Self.itemBytesBound) }
    }
}
