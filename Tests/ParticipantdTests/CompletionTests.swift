import Foundation
import ParticipantTestSupport
import ParticipantWire
import Testing

/// Shell completion from participantctl itself (swift-argument-parser's generator), as the
/// package installs it: bash's is run as bash runs it, zsh's and fish's are checked for every
/// subcommand.
@Suite struct CompletionTests {
    /// What bash's completion offers for `words` (the last one being completed).
    func bashCompletions(_ words: [String]) async throws -> [String] {
        let binary = try BuiltProduct.path("participantctl")
        let quoted = words.map { "'\($0)'" }.joined(separator: " ")
        let script = """
            source <("$PARTICIPANTCTL" --generate-completion-script bash)
            COMP_WORDS=(\(quoted)); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
            COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
            _participantctl "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\\n' "${COMPREPLY[@]}"
            """
        let path = (binary as NSString).deletingLastPathComponent
        let (status, output, errors) = try await ChildProcess.run(
            "/bin/bash", ["-c", script],
            environment: ["PARTICIPANTCTL": binary, "PATH": path + ":/usr/bin:/bin"]
        )
        #expect(status == 0, "\(errors)")
        return output.split(separator: "\n").map(String.init).sorted()
    }

    @Test("bash completes subcommands, their options and the values of --state and --content-type")
    func bash() async throws {
        #expect(try await bashCompletions(["participantctl", "re"]) == ["release", "retry"])
        #expect(try await bashCompletions(["participantctl", "retry", "--conn"]) == ["--connection-token"])
        #expect(try await bashCompletions(["participantctl", "list", "--state", "f"]) == ["failed"])
        #expect(try await bashCompletions(["participantctl", "send-event", "--content-type", "application/vnd.amazonaws.connect.event.message.r"])
            == [EventContentType.messageRead.rawValue])
    }

    @Test("Every shell's script names every subcommand", arguments: ["bash", "zsh", "fish"])
    func everySubcommand(shell: String) async throws {
        let binary = try BuiltProduct.path("participantctl")
        let (status, script, errors) = try await ChildProcess.run(binary, ["--generate-completion-script", shell])
        #expect(status == 0, "\(errors)")
        let (_, help, _) = try await ChildProcess.run(binary, ["--help"])
        // The SUBCOMMANDS section of the help: "  name    abstract".
        let section = help.components(separatedBy: "SUBCOMMANDS:").last?.components(separatedBy: "\n\n").first ?? ""
        let subcommands = section.split(separator: "\n")
            .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
            .compactMap { $0.split(separator: " ").first.map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: ",")) } }
        #expect(subcommands.count >= 14 && subcommands.contains("backup") && subcommands.contains("retry"), "\(subcommands)")
        for subcommand in subcommands {
            #expect(script.contains(subcommand), "\(shell): \(subcommand)")
        }
    }
}
