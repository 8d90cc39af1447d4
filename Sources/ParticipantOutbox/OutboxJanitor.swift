import Logging
import ServiceLifecycle

/// Keeps the outbox bounded and clean, every `interval` (30 s): deletes finished events after the
/// retention period (and connection blocks that ran out), a thousand rows per transaction, ends
/// items held longer than `outbox.holdMaxSeconds` (their tokens erased), then
/// scrubs the files (``Outbox/scrub()``), so that a connection token erased from a sent event is
/// gone from every outbox file within a minute. Freed pages are reused by SQLite; free pages
/// beyond a quarter of the file are given back to the filesystem (``Outbox/reclaimFreePages(step:)``),
/// so the file shrinks as the outbox empties.
public struct OutboxJanitor: Service {
    let outbox: Outbox
    let interval: Duration
    let clock: any Clock<Duration>
    let logger: Logger

    public init(outbox: Outbox, interval: Duration = .seconds(30), clock: any Clock<Duration> = ContinuousClock(), logger: Logger) {
        self.outbox = outbox
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let deleted = try await sweep()
                if deleted > 0 {
                    logger.info("Finished events past retention deleted", metadata: ["outbox.deleted": "\(deleted)"])
                }
            } catch {
                logger.warning("Retention sweep failed; trying again later", metadata: ["error": "\(error)"])
            }
            do {
                let ended = try await outbox.expireHeldTooLong()
                if ended > 0 {
                    logger.notice("Items held longer than outbox.holdMaxSeconds ended expired; their connection tokens are erased", metadata: ["outbox.expired": "\(ended)"])
                }
            } catch {
                logger.warning("The check of held items failed; trying again later", metadata: ["error": "\(error)"])
            }
            do {
                let pages = try await outbox.reclaimFreePages()
                if pages > 0 {
                    logger.info("Free pages of the outbox given back to the filesystem", metadata: ["outbox.pages_released": "\(pages)"])
                }
            } catch {
                logger.warning("Giving free pages back failed; trying again later", metadata: ["error": "\(error)"])
            }
            do {
                try await outbox.scrub()
            } catch {
                logger.warning("Outbox scrub (WAL checkpoint) failed; trying again later", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown {
                try await clock.sleep(for: interval)
            }
        }
    }

    /// Deletes everything past retention now; returns how many events.
    public func sweep() async throws -> Int {
        let batch = 1_000
        var total = 0
        while true {
            let deleted = try await outbox.deleteExpiredHistory(limit: batch)
            total += deleted
            if deleted < batch || Task.isShuttingDownGracefully { return total }
        }
    }
}

extension OutboxJanitor: CustomStringConvertible {
    /// The name ServiceLifecycle logs (the default would print the whole outbox).
    public var description: String { "OutboxJanitor" }
}
