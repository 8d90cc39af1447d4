@testable import ParticipantInput
import Testing

/// The ClientToken's control-character rule compares code points instead of looking Unicode's
/// tables up: the same answer as the general category for every scalar.
@Suite struct ControlCharacterTests {
    @Test("isControl is general category Cc for every Unicode scalar")
    func sameAsGeneralCategory() {
        var differing: [UInt32] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }  // surrogates
            if FieldRules.isControl(scalar) != (scalar.properties.generalCategory == .control) {
                differing.append(value)
            }
        }
        #expect(differing.isEmpty)
    }
}
