#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ParticipantWire

/// A command line that cannot be acted on; the AWS CLI exits 252 for these.
public struct UsageError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    public init(_ message: String) {
        self.message = message
    }
}

/// `participantctl send-event`'s input, built the way `aws connectparticipant send-event`
/// builds it: `--cli-input-json` first, then every option given on the command line over it.
public enum SendEventInput {
    /// The keys `--cli-input-json` takes, in the order `--generate-cli-skeleton` prints them.
    public static let inputKeys = ["ContentType", "Content", "ClientToken", "ConnectionToken"]

    /// What `--generate-cli-skeleton` (or `input`) prints: the AWS CLI's text exactly.
    public static let inputSkeleton = """
        {
            "ContentType": "",
            "Content": "",
            "ClientToken": "",
            "ConnectionToken": ""
        }
        """

    /// What `--generate-cli-skeleton output` prints.
    public static let outputSkeleton = """
        {
            "Id": "Id",
            "AbsoluteTime": "AbsoluteTime"
        }
        """

    /// Merges the options with `--cli-input-json` (a JSON string, or `file://path`).
    public static func build(
        cliInputJSON: String?,
        contentType: String?,
        content: String?,
        clientToken: String?,
        connectionToken: String?,
        chat: ChatOptions = ChatOptions()
    ) throws(UsageError) -> EventSubmission {
        let values = try merge(cliInputJSON: cliInputJSON, [
            "ContentType": contentType, "Content": content, "ClientToken": clientToken, "ConnectionToken": connectionToken,
        ], required: chat.participantToken == nil ? ["ContentType", "ConnectionToken"] : ["ContentType"])
        return EventSubmission(
            contentType: values["ContentType"], content: values["Content"],
            clientToken: values["ClientToken"], connectionToken: values["ConnectionToken"],
            participantToken: chat.participantToken, connectParticipant: chat.connectParticipant
        )
    }

    /// The options given on the command line over `--cli-input-json`'s values, by the service's
    /// parameter names; a parameter of `required` missing from both is a usage error naming its
    /// option (`ContentType`: `--content-type`), as the AWS CLI names it.
    static func merge(cliInputJSON: String?, _ options: [String: String?], required: [String], allowed: [String] = inputKeys) throws(UsageError) -> [String: String] {
        var values: [String: String] = [:]
        if let cliInputJSON {
            values = try parseCLIInput(cliInputJSON, allowed: allowed)
        }
        for (key, value) in options {
            if let value { values[key] = value }
        }
        let missing = required.filter { values[$0] == nil }.map(optionName)
        if !missing.isEmpty {
            throw UsageError("the following arguments are required: \(missing.joined(separator: ", "))")
        }
        return values
    }

    /// `ContentType` as its option: `--content-type`.
    static func optionName(_ parameter: String) -> String {
        "--" + parameter.reduce(into: "") { name, character in
            if character.isUppercase, !name.isEmpty { name.append("-") }
            name.append(contentsOf: character.lowercased())
        }
    }

    static func parseCLIInput(_ argument: String, allowed inputKeys: [String] = inputKeys) throws(UsageError) -> [String: String] {
        var text = argument
        if argument.hasPrefix("file://") {
            let path = String(argument.dropFirst("file://".count))
            guard let data = FileManager.default.contents(atPath: path) else {
                throw UsageError("Error parsing parameter '--cli-input-json': Unable to load paramfile \(argument): cannot read \(path)")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        guard let object = JSONValue.object(in: Data(text.utf8)) else {
            throw UsageError("Error parsing parameter '--cli-input-json': Invalid JSON: expected a JSON object")
        }
        var values: [String: String] = [:]
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            guard inputKeys.contains(key) else {
                throw UsageError("Parameter validation failed:\nUnknown parameter in input: \"\(key)\", must be one of: \(inputKeys.joined(separator: ", "))")
            }
            guard case .string(let string) = value else {
                throw UsageError("Parameter validation failed:\nInvalid type for parameter \(key), value: \(value), type: \(value.pythonType), valid types: <class 'str'>")
            }
            values[key] = string
        }
        return values
    }
}

/// `participantctl send-message`'s input, as `aws connectparticipant send-message` builds it:
/// the same four parameters as send-event, of which `--content` is required too.
public enum SendMessageInput {
    /// SendMessage's input skeleton: the same keys, in the same order, as SendEvent's.
    public static let inputSkeleton = SendEventInput.inputSkeleton

    /// What `--generate-cli-skeleton output` prints (member names as values, as the AWS CLI does).
    public static let outputSkeleton = """
        {
            "Id": "Id",
            "AbsoluteTime": "AbsoluteTime",
            "MessageMetadata": {
                "MessageProcessingStatus": "MessageProcessingStatus"
            }
        }
        """

    public static func build(
        cliInputJSON: String?, contentType: String?, content: String?, clientToken: String?, connectionToken: String?,
        chat: ChatOptions = ChatOptions()
    ) throws(UsageError) -> MessageSubmission {
        let values = try SendEventInput.merge(cliInputJSON: cliInputJSON, [
            "ContentType": contentType, "Content": content, "ClientToken": clientToken, "ConnectionToken": connectionToken,
        ], required: chat.participantToken == nil ? ["ContentType", "Content", "ConnectionToken"] : ["ContentType", "Content"])
        return MessageSubmission(
            contentType: values["ContentType"], content: values["Content"],
            clientToken: values["ClientToken"], connectionToken: values["ConnectionToken"],
            participantToken: chat.participantToken, connectParticipant: chat.connectParticipant
        )
    }
}

/// `participantctl disconnect-participant`'s input, as `aws connectparticipant
/// disconnect-participant` builds it: `ClientToken` and `ConnectionToken`.
public enum DisconnectParticipantInput {
    public static let inputSkeleton = """
        {
            "ClientToken": "",
            "ConnectionToken": ""
        }
        """

    /// DisconnectParticipant answers with no members.
    public static let outputSkeleton = "{}"

    public static func build(cliInputJSON: String?, clientToken: String?, connectionToken: String?, chat: ChatOptions = ChatOptions()) throws(UsageError) -> DisconnectSubmission {
        let values = try SendEventInput.merge(
            cliInputJSON: cliInputJSON, ["ClientToken": clientToken, "ConnectionToken": connectionToken],
            required: chat.participantToken == nil ? ["ConnectionToken"] : [], allowed: ["ClientToken", "ConnectionToken"]
        )
        return DisconnectSubmission(
            clientToken: values["ClientToken"], connectionToken: values["ConnectionToken"],
            participantToken: chat.participantToken, connectParticipant: chat.connectParticipant
        )
    }
}

/// participantctl's own options beside the AWS CLI's: a chat named by the participant's token,
/// whose connection participantd creates and renews.
public struct ChatOptions: Sendable, Equatable {
    public var participantToken: String?
    public var connectParticipant: Bool?

    public init(participantToken: String? = nil, connectParticipant: Bool? = nil) {
        self.participantToken = participantToken
        self.connectParticipant = connectParticipant
    }
}

/// Exit codes as the AWS CLI v2 uses them.
public enum CLIExitCode {
    public static let success: Int32 = 0
    /// The command line or a parameter is wrong.
    public static let usage: Int32 = 252
    /// The configuration or environment is wrong: the daemon cannot be reached.
    public static let configuration: Int32 = 253
    /// The daemon or the service refused the event, or it failed.
    public static let refused: Int32 = 254
    /// Anything else (a wait that timed out, an answer not understood).
    public static let other: Int32 = 255

    /// The exit code for a failed call to the daemon.
    public static func forError(_ error: DaemonClientError) -> Int32 {
        switch error {
        case .unreachable: configuration
        case .api(let status, let body):
            status == 400 || status == 413 || body.code == APIErrorCode.validation ? usage : refused
        case .invalidResponse, .localFile: other
        }
    }
}

/// Rewrites an argument list so that options whose value the AWS CLI lets one leave out get their
/// default: `--wait` alone means `--wait 30`, `--generate-cli-skeleton` alone means `input`.
public enum OptionalValueOptions {
    public static let defaults = ["--wait": "30", "--generate-cli-skeleton": "input"]

    public static func expand(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            result.append(argument)
            if let value = defaults[argument] {
                let next = arguments.index(after: index)
                if next == arguments.endIndex || arguments[next].hasPrefix("--") {
                    result.append(value)
                }
            }
            index = arguments.index(after: index)
        }
        return result
    }
}
