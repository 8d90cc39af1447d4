import Foundation
@testable import ParticipantClient
import ParticipantWire
import Testing
import ParticipantTestSupport

@Suite struct SendEventInputTests {
    @Test func optionsOverrideCLIInputJSON() throws {
        let submission = try SendEventInput.build(
            cliInputJSON: #"{"ContentType": "a", "Content": "b", "ClientToken": "c", "ConnectionToken": "d"}"#,
            contentType: "A", content: nil, clientToken: nil, connectionToken: "D"
        )
        #expect(submission == EventSubmission(contentType: "A", content: "b", clientToken: "c", connectionToken: "D"))
    }

    @Test func cliInputJSONFromAFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/input.json"
        try #"{"ContentType": "t", "ConnectionToken": "c"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let submission = try SendEventInput.build(cliInputJSON: "file://" + path, contentType: nil, content: nil, clientToken: nil, connectionToken: nil)
        #expect(submission == EventSubmission(contentType: "t", connectionToken: "c"))
    }

    @Test func refusals() {
        #expect(throws: UsageError("the following arguments are required: --content-type, --connection-token")) {
            try SendEventInput.build(cliInputJSON: nil, contentType: nil, content: nil, clientToken: nil, connectionToken: nil)
        }
        #expect(throws: UsageError.self) {
            try SendEventInput.build(cliInputJSON: #"{"Foo": "x"}"#, contentType: "t", content: nil, clientToken: nil, connectionToken: "c")
        }
        #expect(throws: UsageError.self) {
            try SendEventInput.build(cliInputJSON: "not json", contentType: "t", content: nil, clientToken: nil, connectionToken: "c")
        }
        #expect(throws: UsageError.self) {
            try SendEventInput.build(cliInputJSON: "file:///nonexistent", contentType: "t", content: nil, clientToken: nil, connectionToken: "c")
        }
    }

    @Test("The input skeleton is the AWS CLI's, and parses back as input")
    func skeletons() throws {
        let object = try JSONSerialization.jsonObject(with: Data(SendEventInput.inputSkeleton.utf8)) as? [String: String]
        #expect(object.map { Set($0.keys) } == Set(SendEventInput.inputKeys))
        let output = try JSONDecoder().decode(SendEventOutput.self, from: Data(SendEventInput.outputSkeleton.utf8))
        #expect(output == SendEventOutput(id: "Id", absoluteTime: "AbsoluteTime"))
    }

    @Test func optionalValuesGetTheirDefaults() {
        #expect(OptionalValueOptions.expand(["send-event", "--wait"]) == ["send-event", "--wait", "30"])
        #expect(OptionalValueOptions.expand(["send-event", "--wait", "--content-type", "x"]) == ["send-event", "--wait", "30", "--content-type", "x"])
        #expect(OptionalValueOptions.expand(["send-event", "--wait", "5"]) == ["send-event", "--wait", "5"])
        #expect(OptionalValueOptions.expand(["send-event", "--generate-cli-skeleton"]) == ["send-event", "--generate-cli-skeleton", "input"])
        #expect(OptionalValueOptions.expand(["send-event", "--generate-cli-skeleton", "output"]) == ["send-event", "--generate-cli-skeleton", "output"])
    }

    @Test func exitCodesFollowTheAWSCLI() {
        #expect(CLIExitCode.forError(.unreachable(socketPath: "/x", reason: "r")) == 253)
        #expect(CLIExitCode.forError(.api(status: 400, ErrorBody(code: "ValidationException", message: ""))) == 252)
        #expect(CLIExitCode.forError(.api(status: 409, ErrorBody(code: "IdempotentParameterMismatch", message: ""))) == 254)
        #expect(CLIExitCode.forError(.invalidResponse("?")) == 255)
    }
}
