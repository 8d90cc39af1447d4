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
