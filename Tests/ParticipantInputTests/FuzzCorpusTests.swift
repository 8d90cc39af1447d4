import Foundation
import ParticipantInput
import Testing

/// The fuzz target's seed corpus, replayed on every test run: an input that once broke request
/// decoding stays fixed once it is in `Fuzz/corpus` (`scripts/fuzz` runs the fuzzer itself).
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")

    @Test("Every seed input goes through the fuzz target's checks")
    func replayCorpus() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.corpus, includingPropertiesForKeys: nil)
        #expect(files.count >= 20)
        for file in files {
            InputFuzzing.exercise(try Data(contentsOf: file))
        }
    }

    @Test("The seeds are what their names say: valid requests of both formats decode, the hostile ones are refused")
    func seedsMeanWhatTheySay() throws {
        for name in ["daemon-typing.json", "daemon-read.json", "daemon-unicode.json"] {
            _ = try RequestDecoding.daemonRequest(body: Data(contentsOf: Self.corpus.appendingPathComponent(name)))
        }
        let sendEvent = try Data(contentsOf: Self.corpus.appendingPathComponent("sendevent-delivered.bin"))
        let nul = try #require(sendEvent.firstIndex(of: 0))
        let event = try RequestDecoding.sendEventRequest(body: sendEvent[(nul + 1)...], bearer: String(decoding: sendEvent[..<nul], as: UTF8.self))
        #expect(event.messageId == "11111111-aaaa-bbbb-cccc-EXAMPLE01234")
        for name in ["deep-nesting.json", "invalid-utf8.json", "daemon-wrong-types.json", "daemon-control-in-token.json"] {
            #expect(throws: RequestError.self, "\(name)") { try RequestDecoding.daemonRequest(body: Data(contentsOf: Self.corpus.appendingPathComponent(name))) }
        }
    }
}
