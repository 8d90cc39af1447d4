import Logging
import ParticipantOutbox
import ServiceLifecycle

/// One `info` line every `log.summarySeconds` that says what the daemon did in that time: items
/// accepted, sent, failed and expired, and how many wait. The lifecycle lines (`Event accepted`,
/// `Event sent`) are at `debug`, as swift-log advises for a line per success; failures keep their
/// own lines (`warning` and above). Nothing happened, nothing is logged: an idle daemon stays quiet.
struct ActivitySummary: Service {
    let tally: ActivityTally
    /// Waiting items now (the outbox's count, kept as items come and go).
    let waiting: @Sendable () -> Int
    let interval: Duration
    let stopwatch: Stopwatch
    let logger: Logger

    /// The line for what happened in `seconds`, or nil when nothing did.
    static func line(_ activity: Activity, waiting: Int, seconds: Int) -> (message: Logger.Message, metadata: Logger.Metadata)? {
        guard !activity.isEmpty else { return nil }
        var text = "\(activity.accepted) accepted, \(activity.sent) sent"
        if activity.failed > 0 { text += ", \(activity.failed) failed" }
        if activity.expired > 0 { text += ", \(activity.expired) expired" }
        text += " in the last \(seconds) s; \(waiting) waiting"
        return ("Activity: \(text)", [
            "summary.seconds": "\(seconds)",
            "summary.accepted": "\(activity.accepted)",
            "summary.sent": "\(activity.sent)",
            "summary.failed": "\(activity.failed)",
            "summary.expired": "\(activity.expired)",
            "outbox.waiting": "\(waiting)",
        ])
    }

    func run() async throws {
        guard interval > .zero else {
            try? await gracefulShutdown()
            return
        }
        var last = tally.reading()
        var lastAt = stopwatch.elapsed
        // The last interval's line is written at shutdown too, so a short run is not left unsaid.
        func summarize() {
            let now = tally.reading()
            let at = stopwatch.elapsed
            let seconds = Int((at - lastAt).components.seconds)
            if let line = Self.line(now.since(last), waiting: waiting(), seconds: max(1, seconds)) {
                logger.info(line.message, metadata: line.metadata)
            }
            last = now
            lastAt = at
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await stopwatch.sleep(for: interval) }
            } catch {
                break
            }
            summarize()
        }
        summarize()
    }
}
