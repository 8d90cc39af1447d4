import Logging
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// Keeps the log readable during an outage: of the records with the same key (a message and an
/// error code) within `window`, the first `shown` are logged as they come; the rest are counted,
/// and one summary line per key says how many were left out once the window ends. A dead
/// connection token with thousands of events, or a service that throttles every request, then
/// writes a handful of lines a minute instead of one per event per attempt.
public final class RepeatSummary: Sendable {
    public let window: Duration
    public let shown: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex<[String: Entry]>([:])

    struct Entry {
        var started: ContinuousClock.Instant
        var count: Int
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    public init(window: Duration = .seconds(60), shown: Int = 3, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.window = window
        self.shown = shown
        self.now = now
    }

    /// Logs the record, or counts it when `shown` of its key were logged in this window.
    /// - Parameter metadata: the record's metadata; a summary carries the last one's, without
    ///   `summaryExcluded` keys (those that name one event).
    public func log(_ logger: Logger, _ level: Logger.Level, _ message: String, key: String, metadata: Logger.Metadata) {
        let instant = now()
        var summary: Entry?
        let show = state.withLock { entries -> Bool in
            if let entry = entries[key], instant - entry.started >= window {
                summary = entry
                entries[key] = nil
            }
            var entry = entries[key] ?? Entry(started: instant, count: 0, level: level, message: message, metadata: [:])
            entry.count += 1
            entry.metadata = metadata
            entries[key] = entry
            return entry.count <= shown
        }
        if let summary { emit(summary, to: logger) }
        if show { logger.log(level: level, "\(message)", metadata: metadata) }
    }

    /// Writes the summaries of windows that have ended (all of them with `all`, at shutdown).
    public func flush(_ logger: Logger, all: Bool = false) {
        let instant = now()
        let ended = state.withLock { entries -> [Entry] in
            let keys = entries.filter { all || instant - $0.value.started >= window }.map(\.key)
            return keys.compactMap { entries.removeValue(forKey: $0) }
        }
        for entry in ended { emit(entry, to: logger) }
    }

    private func emit(_ entry: Entry, to logger: Logger) {
        let left = entry.count - shown
        guard left > 0 else { return }
        var metadata = entry.metadata.filter { !Self.summaryExcluded.contains($0.key) }
        metadata["summary.suppressed"] = "\(left)"
        metadata["summary.total"] = "\(entry.count)"
        metadata["summary.window_s"] = "\(Int((now() - entry.started).timeInterval.rounded()))"
        logger.log(level: entry.level, "\(entry.message) (repeated: \(left) more not logged one by one)", metadata: metadata)
    }

    /// Metadata that describes one event, meaningless in a summary.
    static let summaryExcluded: Set<String> = ["event.client_token", "event.id", "event.attempt", "retry.delay_ms", "event.deadline"]
}
