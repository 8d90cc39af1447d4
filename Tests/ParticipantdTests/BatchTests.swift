import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
import ParticipantInput
@testable import ParticipantOutbox
import ParticipantWire
import ParticipantTestSupport
import Testing

/// `POST /v1/events/batch` and `participantctl send-events`: many events in one group commit, each
/// answered as `POST /v1/events` would answer it alone.
@Suite struct BatchTests {
    let typing = EventContentType.typing.rawValue
    let read = EventContentType.messageRead.rawValue

    func object(_ json: String) -> Data { Data(json.utf8) }

    @Test("The batch's shape: an object with one array events of 1 to maxEvents elements; each element judged alone, named by its index")
    func decoding() throws {
        func refusal(_ body: String, maxEvents: Int = 3) -> String {
            do {
                _ = try RequestDecoding.batchRequest(body: Data(body.utf8), maxEvents: maxEvents)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(refusal("[]").contains("must be a JSON object {\"events\""))
        #expect(refusal("{}") == "events is required: an array of events")
        #expect(refusal(#"{"events": {}}"#) == "events must be an array of events")
        #expect(refusal(#"{"events": []}"#) == "events must hold at least one event")
        #expect(refusal(#"{"events": [{}, {}, {}, {}]}"#) == "events must hold at most 3 events (api.maxBatchEvents), not 4")
        #expect(refusal(#"{"events": [], "event": 1}"#) == "event is not a field of a batch: the only field is events")

        let results = try RequestDecoding.batchRequest(body: Data(#"""
            {"events": [
              {"contentType": "\#(typing)", "connectionToken": "c"},
              "not an object",
              {"contentType": "\#(typing)", "connectionToken": 7},
              {"contentType": "nonsense", "connectionToken": "c"},
              {"contentType": "\#(typing)", "connectionToken": "c", "clientTokn": "x"}
            ]}
            """#.utf8), maxEvents: 10)
        #expect(results.count == 5)
        #expect((try? results[0].get())?.contentType == .typing)
        let errors = results.dropFirst().map { result -> String in
            if case .failure(let error) = result { return error.description }
            return "accepted"
        }
        #expect(errors[0].hasPrefix("events[1]: the request body must be a JSON object"))
        #expect(errors[1] == "events[2].connectionToken must be a string")
        #expect(errors[2].hasPrefix("events[3].contentType "))
        #expect(errors[3].hasPrefix("events[4].clientTokn is not a field of an event: did you mean clientToken?"))
    }

    @Test("Each event answered as POST /v1/events would: stored, the same token again, bad input, mismatch; the good ones are delivered")
    func eachEventAnsweredAlone() async throws {
        try await TestDaemon.with { daemon in
            _ = try await daemon.client.submit(EventSubmission(contentType: typing, clientToken: "earlier", connectionToken: "c1"))
            let answer = try await daemon.client.submitBatch(jsonObjects: [
                object(#"{"contentType": "\#(typing)", "clientToken": "b-1", "connectionToken": "c2"}"#),
                object(#"{"contentType": "\#(read)", "content": "{\"messageId\":\"m-1\"}", "clientToken": "b-2", "connectionToken": "c2"}"#),
                object(#"{"contentType": "nonsense", "clientToken": "b-3", "connectionToken": "c2"}"#),
                object(#"{"contentType": "\#(typing)", "clientToken": "earlier", "connectionToken": "c1"}"#),
                object(#"{"contentType": "\#(typing)", "clientToken": "earlier", "connectionToken": "another"}"#),
                object(#"{"contentType": "\#(typing)", "clientToken": "b-1", "connectionToken": "c2"}"#),
            ])
            #expect(answer.results.map(\.status) == [202, 202, 400, 200, 409, 200])
            guard case .event(let first) = answer.results[0].body, case .error(let bad) = answer.results[2].body,
                  case .event(let again) = answer.results[3].body, case .error(let mismatch) = answer.results[4].body,
                  case .event(let inBatch) = answer.results[5].body
            else {
                Issue.record("unexpected bodies: \(answer.results)")
                return
            }
            #expect(first.created && first.event.clientToken == "b-1")
            #expect(bad.code == APIErrorCode.validation && bad.message.hasPrefix("events[2].contentType"))
            #expect(!again.created && again.event.clientToken == "earlier")
            #expect(mismatch.code == APIErrorCode.idempotentParameterMismatch && mismatch.message.contains("connectionToken"))
            // The same ClientToken twice in one batch: the second is the first's duplicate.
            #expect(!inBatch.created && inBatch.event.clientToken == "b-1")
            for token in ["b-1", "b-2"] {
                _ = try await daemon.waitForEvent(token) { $0.state == .sent }
            }
            #expect(try await daemon.client.list(limit: 100).count == 3)
        }
    }

    @Test("Limits: more than api.maxBatchEvents is 400, more than api.maxBatchBytes 413, an outbox with no room refuses the events beyond it alone")
    func limits() async throws {
        // The service fails every attempt (retried): what is stored keeps waiting, so the outbox stays full.
        try await TestDaemon.with(behavior: { _ in .error(status: 500, code: "InternalServerException", message: "down") }, configure: { configuration in
            configuration.api.maxBatchEvents = 3
            configuration.api.maxBatchBytes = 1_024
            configuration.limits.capacity = 2
            configuration.limits.peerShare = 1  // the outbox's own bound, not a peer's share
        }, { daemon in
            let four = (1...4).map { object(#"{"contentType": "\#(typing)", "connectionToken": "c\#($0)"}"#) }
            do throws(DaemonClientError) {
                _ = try await daemon.client.submitBatch(jsonObjects: four)
                Issue.record("a batch of 4 was taken")
            } catch .api(let status, let body) {
                #expect(status == 400 && body.message.contains("api.maxBatchEvents"))
            } catch {
                Issue.record("\(error)")
            }
            let padding = String(repeating: "x", count: 600)
            do throws(DaemonClientError) {
                _ = try await daemon.client.submitBatch(jsonObjects: (1...2).map { object(#"{"contentType": "\#(typing)", "connectionToken": "c\#($0)\#(padding)"}"#) })
                Issue.record("a batch over api.maxBatchBytes was taken")
            } catch .api(let status, let body) {
                #expect(status == 413 && body.message.contains("api.maxBatchBytes"))
            } catch {
                Issue.record("\(error)")
            }
            let three = try await daemon.client.submitBatch(jsonObjects: (1...3).map {
                object(#"{"contentType": "\#(typing)", "clientToken": "full-\#($0)", "connectionToken": "full-\#($0)"}"#)
            })
            #expect(three.results.map(\.status) == [202, 202, 503])
            guard case .error(let full) = three.results[2].body else { Issue.record("no error body"); return }
            #expect(full.code == APIErrorCode.outboxFull)
            #expect(try await daemon.client.list(limit: 10).map(\.clientToken).sorted() == ["full-1", "full-2"])
        })
    }

    @Test("participantctl send-events: one result per line in order, bad lines alone, exit 254 when any failed and 0 when none did")
    func sendEvents() async throws {
        try await TestDaemon.with { daemon in
            let file = daemon.directory.path + "/events.jsonl"
            try """
                {"contentType": "\(typing)", "clientToken": "f-1", "connectionToken": "c1"}

                not json
                {"contentType": "nonsense", "connectionToken": "c1"}
                {"contentType": "\(typing)", "clientToken": "f-2", "connectionToken": "c2"}
                """.write(toFile: file, atomically: true, encoding: .utf8)
            let participantctl = try BuiltProduct.path("participantctl")
            let environment = ["PARTICIPANTD_SOCKET": daemon.configuration.socketPath]
            let (status, output, errors) = try await ChildProcess.run(participantctl, ["send-events", "--file", file, "--batch-size", "2"], environment: environment)
            #expect(status == 254, "\(errors)")
            let lines = output.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            #expect(lines.map { $0["line"] as? Int } == [1, 3, 4, 5])
            #expect(lines.map { $0["status"] as? Int } == [202, 400, 400, 202])
            #expect(((lines[1]["body"] as? [String: Any])?["message"] as? String)?.contains("line 3 is not a JSON object") == true)
            #expect(errors.contains("2 of 4 events were not stored"))

            // All good, from standard input: exit 0; the same tokens again are 200.
            let good = try await ChildProcess.run("/bin/sh", ["-c", "sed -n '1p;5p' '\(file)' | '\(participantctl)' send-events --file -"], environment: environment)
            #expect(good.0 == 0, "\(good.2)")
            #expect(good.1.split(separator: "\n").count == 2 && good.1.contains(#""status":200"#))
            _ = try await daemon.waitForEvent("f-2") { $0.state == .sent }
        }
    }
}
