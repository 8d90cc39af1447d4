import Foundation
import ParticipantClient
import ParticipantWire
import Testing

@Suite struct TerminalTextTests {
    @Test("Control and reordering characters are shown as escapes; everything else as it is")
    func escapes() {
        #expect(TerminalText.escaped("plain token/é 😀") == "plain token/é 😀")
        #expect(TerminalText.escaped("a\u{1B}[2Jb") == "a\\u{001B}[2Jb")
        #expect(TerminalText.escaped("row\nforged  sent") == "row\\u{000A}forged  sent")
        #expect(TerminalText.escaped("csi\u{9B}31m") == "csi\\u{009B}31m")
        #expect(TerminalText.escaped("abc\u{202E}fdp.exe") == "abc\\u{202E}fdp.exe")
        // A backslash is doubled: an escape in the output always comes from an escaped character.
        #expect(TerminalText.escaped("\\u{001B}") == "\\\\u{001B}")
    }

    @Test("JSON keeps its value: C1 and reordering characters become \\u escapes")
    func json() throws {
        let encoded = String(decoding: try JSONEncoder().encode(["token": "a\u{9B}b\u{202E}c\u{1B}"]), as: UTF8.self)
        let escaped = TerminalText.escapedJSON(encoded)
        #expect(!escaped.unicodeScalars.contains { TerminalText.escaped(String($0)) != String($0) && $0 != "\\" })
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(escaped.utf8))
        #expect(decoded == ["token": "a\u{9B}b\u{202E}c\u{1B}"])
        // Pretty printing's new lines stay.
        #expect(TerminalText.escapedJSON("{\n  \"a\" : 1\n}") == "{\n  \"a\" : 1\n}")
    }
}

@Suite struct EventTableTests {
    @Test("participantctl list's table shows a token with escape sequences, and a service's message, escaped: one row, nothing raw")
    func escapedCells() {
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let record = EventRecord(
            clientToken: "evil\u{1B}[2J\nforged-row", contentType: "application/vnd.amazonaws.connect.event.typing", content: nil,
            state: .failed, attempts: 1, acceptedAt: at, updatedAt: at, nextAttemptAt: nil, deadline: at,
            lastError: ErrorBody(code: "X", message: "bad\u{9B}31m"), id: nil, absoluteTime: nil, supersededBy: nil
        )
        let table = EventTable.render([record])
        #expect(table.split(separator: "\n").count == 2, "the header and one row")
        #expect(!table.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B })
        #expect(table.contains("evil\\u{001B}[2J\\u{000A}forged-row"))
        #expect(table.contains("bad\\u{009B}31m"))
    }
}
