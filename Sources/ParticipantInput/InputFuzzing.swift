import Foundation
import ParticipantWire

/// What the fuzz target checks for every input, and the seed-corpus test replays: request
/// decoding never crashes, and whatever it accepts obeys SendEvent's rules and decodes the same
/// again after encoding. A broken property stops the process, which libFuzzer reports as a crash.
public enum InputFuzzing {
    /// Runs one input through every decoder. Bytes before the first NUL (when there is one) are
    /// the `X-Amz-Bearer` header of the service-format request, the rest is the body.
    public static func exercise(_ data: Data) {
        var bearer = "fuzz-connection-token"
        var body = data
        if let nul = data.firstIndex(of: 0) {
            bearer = String(decoding: data[data.startIndex..<nul], as: UTF8.self)
            body = Data(data[data.index(after: nul)...])
        }

        _ = try? RequestDecoding.checkMediaType(String(decoding: data.prefix(256), as: UTF8.self))

        do {
            let event = try RequestDecoding.daemonRequest(body: body)
            checkRules(event)
            let again = try RequestDecoding.daemonRequest(body: try JSONEncoder().encode(EventSubmission(
                contentType: event.contentType.rawValue, content: event.content,
                clientToken: event.clientToken, connectionToken: event.connectionToken
            )))
            check(again == event, "a re-encoded accepted request decodes to the same event")
        } catch let error as RequestError {
            check(!error.description.isEmpty, "every refusal has a message")
        } catch {
            check(false, "encoding an accepted event failed: \(error)")
        }

        do {
            let event = try RequestDecoding.sendEventRequest(body: body, bearer: bearer)
            checkRules(event)
            check(event.connectionToken == bearer, "the connection token is the bearer header")
            let again = try RequestDecoding.sendEventRequest(
                body: try JSONEncoder().encode(SendEventBody(contentType: event.contentType.rawValue, content: event.content, clientToken: event.clientToken)),
                bearer: bearer
            )
            check(again == event, "a re-encoded accepted SendEvent request decodes to the same event")
        } catch let error as RequestError {
            check(!error.description.isEmpty, "every refusal has a message")
        } catch {
            check(false, "encoding an accepted event failed: \(error)")
        }

        exerciseBatch(body)
        exerciseMessage(body)
    }

    /// The message decoder on the same body: what it accepts obeys SendMessage's rules and decodes
    /// the same again after encoding.
    static func exerciseMessage(_ body: Data) {
        do {
            let message = try RequestDecoding.messageRequest(body: body)
            let scalars = message.content.unicodeScalars.count
            check((1...message.contentType.maxContentLength).contains(scalars), "a message's content is 1 to its type's length")
            if let clientToken = message.clientToken {
                check((1...EventValidator.clientTokenMaxLength).contains(clientToken.unicodeScalars.count), "ClientToken is 1...500 characters")
            }
            check(!message.connectionToken.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "ConnectionToken has no control characters")
            let again = try RequestDecoding.messageRequest(body: try JSONEncoder().encode(MessageSubmission(
                contentType: message.contentType.rawValue, content: message.content, clientToken: message.clientToken,
                connectionToken: message.connectionToken, instance: message.instance
            )))
            check(again == message, "a re-encoded accepted message decodes to the same message")
        } catch let error as RequestError {
            check(!error.description.isEmpty, "every refusal has a message")
        } catch {
            check(false, "encoding an accepted message failed: \(error)")
        }
    }

    /// The batch decoder on the same body, and on the body as the only element of a batch: one
    /// result per element, each accepted one obeying the rules, each refusal naming its index.
    static func exerciseBatch(_ body: Data) {
        var wrapped = Data(#"{"events":["#.utf8)
        wrapped.append(body)
        wrapped.append(contentsOf: Array("]}".utf8))
        for candidate in [body, wrapped] {
            do {
                let results = try RequestDecoding.batchRequest(body: candidate, maxEvents: 500)
                check((1...500).contains(results.count), "a batch holds 1...500 results")
                for (index, result) in results.enumerated() {
                    switch result {
                    case .success(let event): checkRules(event)
                    case .failure(let error): check(error.description.hasPrefix("events[\(index)]"), "a refused element names its index")
                    }
                }
            } catch {
                check(!error.description.isEmpty, "every refusal has a message")
            }
        }
    }

    static func checkRules(_ event: ValidatedEvent) {
        let scalars = { (text: String) in text.unicodeScalars.count }
        if let content = event.content {
            check((1...EventValidator.contentMaxLength).contains(scalars(content)), "Content is 1...16384 characters")
        }
        if let clientToken = event.clientToken {
            check((1...EventValidator.clientTokenMaxLength).contains(scalars(clientToken)), "ClientToken is 1...500 characters")
        }
        check((1...EventValidator.connectionTokenMaxLength).contains(scalars(event.connectionToken)), "ConnectionToken is 1...1000 characters")
        check(!event.connectionToken.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "ConnectionToken has no control characters")
        check(event.contentType.isReceipt == (event.messageId.map { !$0.isEmpty } ?? false), "a receipt, and only a receipt, has a messageId")
        check(event.warnings.isEmpty != event.contentType.isDeprecated, "a deprecated content type, and only one, warns")
    }

    static func check(_ condition: Bool, _ property: String) {
        if !condition {
            fatalError("fuzz property broken: \(property)")
        }
    }
}
