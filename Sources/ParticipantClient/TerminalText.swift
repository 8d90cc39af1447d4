/// Text from the daemon (ClientTokens, instance names, the service's error messages) as
/// participantctl shows it on an operator's terminal: whatever the daemon sends, nothing in it can
/// move the cursor, clear the screen, start an escape sequence or reorder what is shown.
///
/// The daemon refuses ClientTokens with control characters, but an outbox written by an older
/// version, or a service's error message, may still hold them.
public enum TerminalText {
    /// `text` with every control character (C0, DEL, C1) and every bidirectional formatting
    /// character written as `\u{XXXX}`, and `\` as `\\`, so that an escape is never ambiguous.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0) || $0 == "\\" }) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if scalar == "\\" {
                result += "\\\\"
            } else if needsEscape(scalar) {
                result += "\\u{\(hex(scalar))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// JSON text with the characters JSON allows raw but a terminal acts on (DEL, C1, the
    /// bidirectional formatting characters) written as `\uXXXX` escapes: the same JSON value.
    public static func escapedJSON(_ json: String) -> String {
        // C0 characters are escaped by every JSON encoder inside strings; outside them they are
        // the text's own whitespace (pretty printing's new lines).
        func needsJSONEscape(_ scalar: Unicode.Scalar) -> Bool { scalar.value >= 0x20 && needsEscape(scalar) }
        guard json.unicodeScalars.contains(where: needsJSONEscape) else { return json }
        var result = ""
        result.reserveCapacity(json.utf8.count + 8)
        for scalar in json.unicodeScalars {
            if needsJSONEscape(scalar) {
                result += "\\u\(hex(scalar))"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Control characters, and the characters that reorder text (U+061C, U+200E, U+200F,
    /// U+202A to U+202E, U+2066 to U+2069): all in the Basic Multilingual Plane.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    private static func hex(_ scalar: Unicode.Scalar) -> String {
        let digits = String(scalar.value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
