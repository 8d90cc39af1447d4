import Foundation
import Logging
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// How log records are written to standard error (`log.format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// `journal` when standard error is connected to journald (`$JOURNAL_STREAM` names it), `text` otherwise.
    case auto
    /// For journald: `<N>` syslog priority prefix (so `journalctl -p` filters), message, logfmt
    /// `key=value` metadata. No timestamp: the journal stamps each line.
    case journal
    /// One JSON object per line: `time`, `level`, `message`, then the metadata as strings.
    case json
    /// For a terminal: time, level, message, logfmt metadata.
    case text

    /// `auto` made concrete for this process.
    public func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) -> LogFormat {
        guard self == .auto else { return self }
        return Self.standardErrorIsJournal(environment) ? .journal : .text
    }

    /// systemd sets `JOURNAL_STREAM=DEV:INODE` for the stream it connects; it is ours if standard
    /// error is that very file (sd_journal_stream_fd(3), "JOURNAL_STREAM").
    static func standardErrorIsJournal(_ environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }
}

/// The level and format every logger of the daemon follows, changeable at run time (SIGHUP).
public final class LogSettings: Sendable {
    private let state: Mutex<(level: Logger.Level, format: LogFormat)>
    /// Where `journal` records go as structured entries (journald's native protocol); `nil`, or a
    /// send that fails: as stream lines on standard error.
    public let journal: JournalSocket?

    public init(level: Logger.Level, format: LogFormat, journal: JournalSocket? = nil) {
        state = Mutex((level, format))
        self.journal = journal
    }

    /// The journal's native socket this process logs to: `log.journalSocket` when set, else
    /// journald's own when standard error is the journal (`$JOURNAL_STREAM`); otherwise `nil`.
    public static func journalSocket(configured: String?, environment: [String: String]) -> JournalSocket? {
        if let configured, !configured.isEmpty { return JournalSocket(path: configured) }
        return LogFormat.standardErrorIsJournal(environment) ? JournalSocket(path: JournalSocket.defaultPath) : nil
    }

    public var level: Logger.Level {
        get { state.withLock { $0.level } }
        set { state.withLock { $0.level = newValue } }
    }

    /// Always concrete (never `.auto`).
    public var format: LogFormat {
        get { state.withLock { $0.format } }
        set { state.withLock { $0.format = newValue } }
    }
}

/// The daemon's log handler: one line per record on standard error, in the format of ``LogSettings``.
///
/// Written by hand: swift-log's `StreamLogHandler` has one fixed text layout, and no package on
/// this machine writes syslog priority prefixes or logfmt.
public struct DaemonLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let settings: LogSettings
    private let write: @Sendable (String) -> Void

    public init(settings: LogSettings, write: @escaping @Sendable (String) -> Void = DaemonLogHandler.writeToStandardError) {
        self.settings = settings
        self.write = write
    }

    /// This logger's own level, once set (`logger.logLevel = ...`); until then the daemon's.
    private var ownLevel: Logger.Level?

    /// The daemon's level (`log.level`, changed by a reload through ``LogSettings``), unless this
    /// logger was given one of its own, which then stays whatever a reload says.
    public var logLevel: Logger.Level {
        get { ownLevel ?? settings.level }
        set { ownLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let own = event.metadata { merged.merge(own) { $1 } }
        let format = settings.format
        let message = "\(event.message)"
        if format == .journal, let journal = settings.journal {
            let fields = JournalEntry.fields(
                level: event.level, message: message, metadata: merged.sorted { $0.key < $1.key },
                file: event.file, line: event.line, function: event.function
            )
            // Not taken (no journald, larger than a datagram may be): the stream line instead.
            if journal.send(JournalEntry.encode(fields)) { return }
        }
        write(Self.format(level: event.level, message: message, metadata: merged, as: format, at: Date()))
    }

    /// One record as one line, newline included.
    public static func format(level: Logger.Level, message: String, metadata: Logger.Metadata, as format: LogFormat, at time: Date) -> String {
        let fields = metadata.sorted { $0.key < $1.key }
        switch format {
        case .json:
            var object = "{\"time\":\"\(WireCoding.formatTimestamp(time))\",\"level\":\"\(level.rawValue)\",\"message\":\(jsonString(message))"
            for (key, value) in fields where !["time", "level", "message"].contains(key) {
                object += ",\(jsonString(key)):\(jsonString(value.description))"
            }
            return object + "}\n"
        case .journal, .auto:
            var line = "<\(syslogPriority(level))>"
            line.reserveCapacity(64 + message.utf8.count + fields.count * 48)
            line += singleLine(message)
            appendLogfmt(fields, to: &line)
            line += "\n"
            return line
        case .text:
            var line = WireCoding.formatTimestamp(time)
            line.reserveCapacity(64 + message.utf8.count + fields.count * 48)
            line += " "
            line += level.rawValue
            line += " "
            line += singleLine(message)
            appendLogfmt(fields, to: &line)
            line += "\n"
            return line
        }
    }

    /// ` key=value` for each field (the stream line's and the journal entry's `MESSAGE`).
    static func appendLogfmt(_ fields: [(key: String, value: Logger.MetadataValue)], to line: inout String) {
        for (key, value) in fields {
            line += " "
            line += key
            line += "="
            line += logfmtValue(value.description)
        }
    }

    /// syslog(3) priorities, as journald reads them from a `<N>` prefix.
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// A logfmt value: bare when it can be, else quoted with `"`, `\` and control characters escaped.
    static func logfmtValue(_ value: String) -> String {
        // Every character that needs quoting is ASCII, so a scan of the bytes decides (a scan of
        // the scalars decodes each one: most of a line's cost, and most values need no quotes).
        let needsQuotes = value.isEmpty || value.utf8.contains { byte in
            byte == 0x20 || byte == 0x3D || byte == 0x22 || byte == 0x5C || byte < 0x20 || byte == 0x7F
        }
        guard needsQuotes else { return value }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    quoted += String(format: "\\u%04x", scalar.value)
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }

    /// A message never spans lines: the journal would split it into records.
    static func singleLine(_ message: String) -> String {
        // A newline character (LF, VT, FF, CR, NEL, LS, PS) starts with one of these bytes: a
        // message without any has none, which spares segmenting it into characters.
        let mayHaveNewline = message.utf8.contains { byte in (0x0A...0x0D).contains(byte) || byte == 0xC2 || byte == 0xE2 }
        guard mayHaveNewline, message.contains(where: \.isNewline) else { return message }
        return message.replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
    }

    static func jsonString(_ value: String) -> String {
        let data = (try? JSONEncoder().encode(value)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// One `write(2)` per line, so lines from several threads never interleave.
    public static let writeToStandardError: @Sendable (String) -> Void = { line in
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 {
                    if written < 0 && errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}
