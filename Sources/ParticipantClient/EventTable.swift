import ParticipantWire

/// The table `participantctl list` prints.
public enum EventTable {
    public static func render(_ events: [EventRecord]) -> String {
        let header = ["CLIENT TOKEN", "TYPE", "STATE", "TRIES", "ACCEPTED", "NEXT/UPDATED", "INSTANCE", "CONNECTION", "OWNER", "LAST ERROR"]
        let rows = events.map { event -> [String] in
            let type = ItemContentType(rawValue: event.contentType)?.shortName ?? event.contentType
            let when = event.nextAttemptAt ?? event.updatedAt
            // Whatever the daemon sends, nothing reaches the terminal raw (TerminalText).
            return [
                event.clientToken, type, event.state.rawValue, "\(event.attempts)",
                WireCoding.formatTimestamp(event.acceptedAt), WireCoding.formatTimestamp(when),
                event.instance ?? "", event.connectionHash ?? "", event.owner?.displayName ?? "", event.lastError.map { "\($0.code): \($0.message)" }.map { String($0.prefix(60)) } ?? "",
            ].map(TerminalText.escaped)
        }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell + String(repeating: " ", count: max(0, widths[index] - cell.count))
            }.joined(separator: "  ")
        }
        var lines = [line(header)] + rows.map(line)
        if rows.isEmpty { lines.append("(no events)") }
        return lines.joined(separator: "\n")
    }
}
