import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ParticipantClient
import ParticipantWire
import SystemPackage

@main
struct ParticipantControl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "participantctl",
        abstract: "Hands events to participantd and shows what became of them.",
        version: DaemonVersion.current,
        subcommands: [
            SendEvent.self, SendMessage.self, DisconnectParticipant.self, SendEvents.self, Show.self, Health.self,
            List.self, Retry.self, Hold.self, Release.self, Delete.self, Flush.self, Stats.self, Backup.self,
        ]
    )

    /// `--wait` and `--generate-cli-skeleton` take an optional value, as in the AWS CLI.
    static func main() async {
        let arguments = OptionalValueOptions.expand(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)  // --help, --version
            }
            if code == .validationFailure {
                printError(fullMessage(for: error))
                terminate(CLIExitCode.usage)
            }
            exit(withError: error)
        }
    }
}

/// A chat named by the participant's token instead of `--connection-token`.
struct ParticipantOptions: ParsableArguments {
    @Option(help: "In place of --connection-token: the participant's token; participantd creates and renews the connection (CreateParticipantConnection).")
    var participantToken: String?

    @Flag(inversion: .prefixedNo, help: "With --participant-token: CreateParticipantConnection's ConnectParticipant (default: the daemon's connections.connectParticipant).")
    var connectParticipant: Bool?

    var chat: ChatOptions { ChatOptions(participantToken: participantToken, connectParticipant: connectParticipant) }
}

struct GlobalOptions: ParsableArguments {
    @Option(help: "participantd's socket (default: $PARTICIPANTD_SOCKET, else /run/participantd/participantd.sock).")
    var socket: String = ProcessInfo.processInfo.environment["PARTICIPANTD_SOCKET"] ?? "/run/participantd/participantd.sock"

    var client: DaemonClient { DaemonClient(socketPath: socket) }
}

/// Whose items a queue command works on: the caller's own by default; an administrator (root,
/// participantd's user, `access.adminGroups`) sees everyone's, and names one user's with --owner.
struct OwnerOptions: ParsableArguments {
    @Option(help: "Only this user's items (a name or a uid): for root, participantd's user and access.adminGroups, who see every user's; others see only their own.")
    var owner: String?

    func validate() throws {
        if let owner, UserAccounts.uid(of: owner) == nil {
            throw ValidationError("--owner must be a user name or a uid; no user is named \"\(owner)\" on this host")
        }
    }

    var uid: UInt32? { owner.flatMap(UserAccounts.uid(of:)) }
}

/// Prints `error` the way the AWS CLI prints a failed operation and exits with its code.
func fail(_ error: DaemonClientError, operation: String = "SendEvent") -> Never {
    switch error {
    case .api(_, let body):
        printError("\nAn error occurred (\(TerminalText.escaped(body.code))) when calling the \(operation) operation: \(TerminalText.escaped(body.message))")
    default:
        printError("\n\(TerminalText.escaped("\(error)"))")
    }
    terminate(CLIExitCode.forError(error))
}

func fail(usage error: UsageError) -> Never {
    printError("\n\(error.message)")
    terminate(CLIExitCode.usage)
}

func terminate(_ code: Int32) -> Never {
    exit(code)
}

func printError(_ text: String) {
    _ = try? FileDescriptor.standardError.writeAll((text + "\n").utf8)
}

/// Everything on standard input, to its end.
func readStandardInput() throws -> Data {
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = try buffer.withUnsafeMutableBytes { try FileDescriptor.standardInput.read(into: $0) }
        if count == 0 { return data }
        data.append(contentsOf: buffer[..<count])
    }
}

func printJSON(_ value: some Encodable) {
    guard let data = try? WireCoding.encoder(pretty: true).encode(value) else { return }
    print(TerminalText.escapedJSON(String(decoding: data, as: UTF8.self)))
}

struct SendEvent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-event",
        abstract: "Sends an event, as `aws connectparticipant send-event` does, through participantd's outbox.",
        discussion: """
            Prints the outbox record (state queued) once the event is stored on disk. With --wait it \
            waits until the service has it and prints {"Id", "AbsoluteTime"} as the AWS CLI would. \
            Exit codes: 0 success, 252 bad parameter, 253 participantd not reachable, 254 refused or \
            failed, 255 other (a wait that timed out).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var participant: ParticipantOptions

    @Option(help: "The content type of the request (one of the four SendEvent types).",
            completion: .list(EventContentType.allCases.map(\.rawValue)))
    var contentType: String?

    @Option(help: "The content of the event; for receipts {\"messageId\":\"...\"}.")
    var content: String?

    @Option(help: "A unique, case-sensitive idempotency token; generated once by participantd when left out.")
    var clientToken: String?

    @Option(help: "The authentication token of the participant's connection.")
    var connectionToken: String?

    @Option(help: "The parameters as JSON (keys as --generate-cli-skeleton prints them), or file://path.")
    var cliInputJSON: String?

    @Option(help: "Print a JSON skeleton and send nothing: input (the default) or output.")
    var generateCLISkeleton: String?

    @Option(help: ArgumentHelp("Wait until the event is sent, at most this many seconds (default 30).", valueName: "seconds"))
    var wait: Double?

    @Option(help: "The Connect instance, by its name in participantd's configuration (default: $PARTICIPANTD_INSTANCE, else default).")
    var instance: String = ProcessInfo.processInfo.environment["PARTICIPANTD_INSTANCE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"

    func run() async throws {
        if printedSkeleton(generateCLISkeleton, input: SendEventInput.inputSkeleton, output: SendEventInput.outputSkeleton) { return }
        checkWait(wait)
        var submission: EventSubmission
        do {
            submission = try SendEventInput.build(
                cliInputJSON: cliInputJSON, contentType: contentType, content: content,
                clientToken: clientToken, connectionToken: connectionToken, chat: participant.chat
            )
        } catch {
            fail(usage: error)
        }
        // Left out for the default instance: a daemon that predates instances takes the submission too.
        submission.instance = instance == "default" ? nil : instance

        let answer: SubmitResponse
        do {
            answer = try await global.client.submit(submission)
        } catch {
            fail(error)
        }
        await report(answer, wait: wait, client: global.client, operation: "SendEvent") { record in
            SendEventOutput(id: record.id ?? "", absoluteTime: record.absoluteTime ?? "")
        }
    }
}

/// `--generate-cli-skeleton [input|output]`: prints that skeleton; whether one was asked for.
func printedSkeleton(_ which: String?, input: String, output: String) -> Bool {
    guard let which else { return false }
    switch which {
    case "input": print(input)
    case "output": print(output)
    default: fail(usage: UsageError("--generate-cli-skeleton takes input or output, got \(which)"))
    }
    return true
}

/// `--wait SECONDS` must be a positive number.
func checkWait(_ wait: Double?) {
    if let wait, !(wait > 0) {
        fail(usage: UsageError("--wait takes a number of seconds greater than 0"))
    }
}

/// What `send-event` and `send-message` print once the daemon has stored the item: its record,
/// or with `wait` what the AWS CLI would print once the service has it (`output`), or the
/// service's refusal as the AWS CLI prints it; exits as the AWS CLI would.
func report(
    _ answer: SubmitResponse, wait: Double?, client: DaemonClient, operation: String,
    output: (EventRecord) -> some Encodable
) async {
    for warning in answer.warnings {
        printError("warning: \(TerminalText.escaped(warning))")
    }
    guard let wait else {
        printJSON(answer.event)
        return
    }
    let kind = answer.event.kind?.rawValue ?? "event"
    let record: EventRecord
    do {
        record = try await client.waitForFinalState(clientToken: answer.event.clientToken, timeout: .milliseconds(Int64(wait * 1000)))
    } catch {
        fail(error, operation: operation)
    }
    switch record.state {
    case .sent:
        let printed = output(record)
        // An output without members (DisconnectParticipant's) prints nothing, as the AWS CLI.
        if !(printed is DisconnectParticipant.EmptyOutput) { printJSON(printed) }
    case .failed, .expired:
        let error = record.lastError ?? ErrorBody(code: record.state.rawValue, message: "the \(kind) \(record.state.rawValue)")
        printError("\nAn error occurred (\(TerminalText.escaped(error.code))) when calling the \(operation) operation: \(TerminalText.escaped(error.message))")
        terminate(CLIExitCode.refused)
    case .superseded:
        printError("The \(kind) was replaced by a newer one (\(TerminalText.escaped(record.supersededBy ?? "unknown"))) and not sent.")
        printJSON(record)
    case .queued, .sending, .held:
        printJSON(record)
        printError("\nThe \(kind) is still \(record.state.rawValue) after \(wait) seconds; it stays in the outbox (participantctl status \(TerminalText.escaped(record.clientToken))).")
        terminate(CLIExitCode.other)
    }
}

struct SendMessage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-message",
        abstract: "Sends a message, as `aws connectparticipant send-message` does, through participantd's outbox.",
        discussion: """
            Prints the outbox record (state queued) once the message is stored on disk. Messages of \
            a chat reach the service in the order participantd acknowledged them, one at a time, \
            never coalesced. With --wait it waits until the service has it and prints {"Id", \
            "AbsoluteTime", "MessageMetadata"} as the AWS CLI would. Exit codes: 0 success, 252 bad \
            parameter, 253 participantd not reachable, 254 refused or failed, 255 other (a wait \
            that timed out).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var participant: ParticipantOptions

    @Option(help: "The type of the content: text/plain, text/markdown, application/json or application/vnd.amazonaws.connect.message.interactive.response.",
            completion: .list(MessageContentType.allCases.map(\.rawValue)))
    var contentType: String?

    @Option(help: "The content of the message (text/plain and text/markdown: at most 1024 characters; application/json: 12000; interactive responses: 12288).")
    var content: String?

    @Option(help: "A unique, case-sensitive idempotency token; generated once by participantd when left out.")
    var clientToken: String?

    @Option(help: "The authentication token of the participant's connection.")
    var connectionToken: String?

    @Option(help: "The parameters as JSON (keys as --generate-cli-skeleton prints them), or file://path.")
    var cliInputJSON: String?

    @Option(help: "Print a JSON skeleton and send nothing: input (the default) or output.")
    var generateCLISkeleton: String?

    @Option(help: ArgumentHelp("Wait until the message is sent, at most this many seconds (default 30).", valueName: "seconds"))
    var wait: Double?

    @Option(help: "The Connect instance, by its name in participantd's configuration (default: $PARTICIPANTD_INSTANCE, else default).")
    var instance: String = ProcessInfo.processInfo.environment["PARTICIPANTD_INSTANCE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"

    func run() async throws {
        if printedSkeleton(generateCLISkeleton, input: SendMessageInput.inputSkeleton, output: SendMessageInput.outputSkeleton) { return }
        checkWait(wait)
        var submission: MessageSubmission
        do {
            submission = try SendMessageInput.build(
                cliInputJSON: cliInputJSON, contentType: contentType, content: content,
                clientToken: clientToken, connectionToken: connectionToken, chat: participant.chat
            )
        } catch {
            fail(usage: error)
        }
        submission.instance = instance == "default" ? nil : instance
        let answer: SubmitResponse
        do {
            answer = try await global.client.submit(submission)
        } catch {
            fail(error, operation: "SendMessage")
        }
        await report(answer, wait: wait, client: global.client, operation: "SendMessage") { record in
            SendMessageOutput(
                id: record.id ?? "", absoluteTime: record.absoluteTime ?? "",
                messageMetadata: record.processingStatus.map { SendMessageOutput.Metadata(messageProcessingStatus: $0) }
            )
        }
    }
}

struct DisconnectParticipant: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disconnect-participant",
        abstract: "Disconnects the participant, as `aws connectparticipant disconnect-participant` does, through participantd's outbox.",
        discussion: """
            The disconnect is sent once everything participantd acknowledged before it on the chat \
            has reached a final state (messages first, in order); typing and receipts still waiting \
            on the chat are superseded, and the chat takes nothing more (409 ChatDisconnected). \
            Prints the outbox record once the disconnect is stored on disk; with --wait it waits \
            until the service has it and prints nothing, as the AWS CLI. Exit codes: 0 success, 252 \
            bad parameter, 253 participantd not reachable, 254 refused or failed, 255 other (a wait \
            that timed out).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var participant: ParticipantOptions

    @Option(help: "A unique, case-sensitive idempotency token; generated once by participantd when left out.")
    var clientToken: String?

    @Option(help: "The authentication token of the participant's connection.")
    var connectionToken: String?

    @Option(help: "The parameters as JSON (keys as --generate-cli-skeleton prints them), or file://path.")
    var cliInputJSON: String?

    @Option(help: "Print a JSON skeleton and send nothing: input (the default) or output.")
    var generateCLISkeleton: String?

    @Option(help: ArgumentHelp("Wait until the disconnect is sent, at most this many seconds (default 30).", valueName: "seconds"))
    var wait: Double?

    @Option(help: "The Connect instance, by its name in participantd's configuration (default: $PARTICIPANTD_INSTANCE, else default).")
    var instance: String = ProcessInfo.processInfo.environment["PARTICIPANTD_INSTANCE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"

    func run() async throws {
        if printedSkeleton(generateCLISkeleton, input: DisconnectParticipantInput.inputSkeleton, output: DisconnectParticipantInput.outputSkeleton) { return }
        checkWait(wait)
        var submission: DisconnectSubmission
        do {
            submission = try DisconnectParticipantInput.build(cliInputJSON: cliInputJSON, clientToken: clientToken, connectionToken: connectionToken, chat: participant.chat)
        } catch {
            fail(usage: error)
        }
        submission.instance = instance == "default" ? nil : instance
        let answer: SubmitResponse
        do {
            answer = try await global.client.submit(submission)
        } catch {
            fail(error, operation: "DisconnectParticipant")
        }
        await report(answer, wait: wait, client: global.client, operation: "DisconnectParticipant", output: { _ in EmptyOutput() })
    }

    /// DisconnectParticipant's output: nothing, which the AWS CLI prints as nothing.
    struct EmptyOutput: Encodable {}
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prints the outbox record of an event (connection token shown only as its hash).", aliases: ["status"]
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var owner: OwnerOptions

    @Argument(help: "The event's ClientToken.")
    var clientToken: String

    func run() async throws {
        do {
            printJSON(try await global.client.event(clientToken: clientToken, owner: owner.uid))
        } catch {
            fail(error, operation: "Show")
        }
    }
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prints participantd's health and queue counts.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        do {
            printJSON(try await global.client.health())
        } catch {
            fail(error, operation: "Health")
        }
    }
}
