import Foundation
import ParticipantWire

/// Why a request cannot become an event. Each case is one answer at the socket API's edge.
public enum RequestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 415: the Content-Type is not JSON.
    case unsupportedMediaType(String)
    /// 400: the body is not a JSON object of the expected shape (not JSON, not UTF-8, nested too
    /// deeply, not an object).
    case malformed(String)
    /// 400: a field breaks a rule of SendEvent's input (a field of the wrong JSON type too).
    case invalid(ValidationError)

    public var description: String {
        switch self {
        case .unsupportedMediaType(let message), .malformed(let message): message
        case .invalid(let error): "\(error.field) \(error.rule)"
        }
    }
}

/// The two request formats the daemon takes, from bytes to a ``ValidatedEvent``: the socket API's
/// own (`POST /v1/events`, camelCase fields, the connection token in the body) and the service's
/// (`POST /participant/event`, SendEvent's body, the connection token in `X-Amz-Bearer`).
///
/// Pure functions without I/O, so the fuzz target (`scripts/fuzz`) can run them millions of times.
public enum RequestDecoding {
    /// The media types a JSON body may be declared as. No Content-Type at all is taken as JSON too:
    /// some HTTP clients leave it out for a body they were handed as bytes.
    public static func checkMediaType(_ value: String?) throws(RequestError) {
        guard let value, !value.isEmpty else { return }
        // What nearly every client sends, decided without Foundation's trimming (its cost a
        // request is in BENCHMARKS.md).
        if value == "application/json" { return }
        let mediaType = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0]
            .trimmingCharacters(in: .whitespaces).lowercased()
        if mediaType == "application/json" || mediaType.hasSuffix("+json") || mediaType.hasPrefix("application/x-amz-json") {
            return
        }
        throw .unsupportedMediaType("Content-Type must be application/json, got \"\(value.prefix(100))\"")
    }

    /// `POST /v1/events`: `{"contentType", "content", "clientToken", "connectionToken"}`.
    ///
    /// A field of another name is refused, not ignored: a client that misspells `clientToken`
    /// would otherwise get a new token, and so a new event, at every retry. (The SDK route keeps
    /// the service's leniency: SDKs may send members this daemon does not know.)
    public static func daemonRequest(body: Data) throws(RequestError) -> ValidatedEvent {
        // The common body without JSONDecoder; anything else (and every error) through it.
        let submission: EventSubmission
        if let flat = FlatJSON.eventSubmission(body) {
            submission = flat
        } else {
            submission = try decode(
                body, as: Strict<EventSubmission>.self, shape: "a JSON object with the fields contentType, content, clientToken, connectionToken and instance"
            ).submission
        }
        do {
            return try EventValidator.validate(submission)
        } catch {
            throw .invalid(error)
        }
    }

    /// `POST /v1/messages`: a ``MessageSubmission`` as JSON, every field checked, then SendMessage's rules.
    public static func messageRequest(body: Data) throws(RequestError) -> ValidatedMessage {
        let submission = try decode(
            body, as: Strict<MessageSubmission>.self, shape: "a JSON object with the fields contentType, content, clientToken, connectionToken and instance"
        ).submission
        do {
            return try MessageValidator.validate(submission)
        } catch {
            throw .invalid(error)
        }
    }

    /// `POST /v1/disconnect`: a ``DisconnectSubmission`` as JSON, every field checked.
    public static func disconnectRequest(body: Data) throws(RequestError) -> ValidatedDisconnect {
        let submission = try decode(
            body, as: Strict<DisconnectSubmission>.self, shape: "a JSON object with the fields clientToken, connectionToken and instance"
        ).submission
        do {
            return try DisconnectValidator.validate(submission)
        } catch {
            throw .invalid(error)
        }
    }

    /// `POST /v1/events/{clientToken}/retry`: no body, or `{"connectionToken"}` (the token to
    /// send the item with, under the rules of a submission's). Returns the token, if any.
    public static func retryRequest(body: Data) throws(RequestError) -> String? {
        if body.isEmpty { return nil }
        let submission = try decode(body, as: Strict<RetrySubmission>.self, shape: "a JSON object with the field connectionToken").submission
        guard let token = submission.connectionToken else { return nil }
        do {
            return try FieldRules.connectionToken(token)
        } catch {
            throw .invalid(error)
        }
    }

    /// `POST /v1/events/batch`: `{"events": [SUBMISSION, ...]}`, each element what `POST /v1/events`
    /// takes. The batch as a whole must be an object with one non-empty array `events` of at most
    /// `maxEvents` elements; each element is then decoded and validated alone, so a bad one fails
    /// by itself, its error naming its index (`events[3].contentType ...`).
    public static func batchRequest(body: Data, maxEvents: Int) throws(RequestError) -> [Result<ValidatedEvent, RequestError>] {
        // Elements that are all the common body without JSONDecoder; anything else through it.
        let elements: [Result<EventSubmission, RequestError>]
        if let events = FlatJSON.eventBatch(body) {
            elements = events.map { .success($0) }
        } else {
            elements = try decode(body, as: StrictBatch.self, shape: "a JSON object {\"events\": [...]} whose events are objects as POST /v1/events takes")
                .elements.map(\.result)
        }
        guard !elements.isEmpty else {
            throw .invalid(ValidationError(field: "events", rule: "must hold at least one event"))
        }
        guard elements.count <= maxEvents else {
            throw .invalid(ValidationError(field: "events", rule: "must hold at most \(maxEvents) events (api.maxBatchEvents), not \(elements.count)"))
        }
        return elements.enumerated().map { index, element in
            element.flatMap { submission in
                do throws(ValidationError) {
                    return .success(try EventValidator.validate(submission))
                } catch {
                    return .failure(.invalid(error))
                }
            }
            .mapError { error in
                switch error {
                case .invalid(let validation):
                    .invalid(ValidationError(field: "events[\(index)].\(validation.field)", rule: validation.rule))
                case .malformed(let message), .unsupportedMediaType(let message):
                    .malformed("events[\(index)]: \(message)")
                }
            }
        }
    }

    /// `POST /participant/event`: SendEvent's body, and the connection token from `X-Amz-Bearer`.
    /// Errors name the fields as the service does (`ContentType`, ...).
    /// - Parameter instance: the instance the path names (`/instances/NAME/participant/event`);
    ///   `nil`: the default one.
    public static func sendEventRequest(body: Data, bearer: String?, instance: String? = nil) throws(RequestError) -> ValidatedEvent {
        let sendEvent = try decode(body, as: SendEventBody.self, shape: "a JSON object with the fields ContentType, Content and ClientToken")
        let submission = EventSubmission(
            contentType: sendEvent.contentType, content: sendEvent.content, clientToken: sendEvent.clientToken, connectionToken: bearer,
            instance: instance
        )
        do {
            return try EventValidator.validate(submission)
        } catch {
            throw .invalid(ValidationError(field: serviceFieldNames[error.field] ?? error.field, rule: error.rule))
        }
    }

    /// `POST /participant/message`: SendMessage's body (the same three members as SendEvent's), and
    /// the connection token from `X-Amz-Bearer`; errors name the fields as the service does.
    public static func sendMessageRequest(body: Data, bearer: String?, instance: String? = nil) throws(RequestError) -> ValidatedMessage {
        let sendMessage = try decode(body, as: SendEventBody.self, shape: "a JSON object with the fields ContentType, Content and ClientToken")
        let submission = MessageSubmission(
            contentType: sendMessage.contentType, content: sendMessage.content, clientToken: sendMessage.clientToken,
            connectionToken: bearer, instance: instance
        )
        do {
            return try MessageValidator.validate(submission)
        } catch {
            throw .invalid(ValidationError(field: serviceFieldNames[error.field] ?? error.field, rule: error.rule))
        }
    }

    /// `POST /participant/disconnect`: DisconnectParticipant's body `{"ClientToken"}` (an empty
    /// body is an empty object: the SDKs send `{}` without a token), and the connection token from
    /// `X-Amz-Bearer`; errors name the fields as the service does.
    public static func disconnectParticipantRequest(body: Data, bearer: String?, instance: String? = nil) throws(RequestError) -> ValidatedDisconnect {
        let disconnect = body.isEmpty ? SendEventBody(contentType: nil) : try decode(body, as: SendEventBody.self, shape: "a JSON object with the field ClientToken")
        do {
            return try DisconnectValidator.validate(DisconnectSubmission(clientToken: disconnect.clientToken, connectionToken: bearer, instance: instance))
        } catch {
            throw .invalid(ValidationError(field: serviceFieldNames[error.field] ?? error.field, rule: error.rule))
        }
    }

    /// The validator's field names as SendEvent's and SendMessage's input call them.
    public static let serviceFieldNames = [
        "contentType": "ContentType",
        "content": "Content",
        "clientToken": "ClientToken",
        "connectionToken": "ConnectionToken (the X-Amz-Bearer header)",
        "instance": "instance (the path's /instances/NAME)",
    ]

    private static func decode<Body: Decodable>(_ body: Data, as _: Body.Type, shape: String) throws(RequestError) -> Body {
        if body.isEmpty {
            throw .malformed("the request body is empty; it must be \(shape)")
        }
        do {
            return try JSONDecoder().decode(Body.self, from: body)
        } catch {
            throw requestError(error, shape: shape)
        }
    }

    /// What a decoding error means for the client. `pathStart`: the coding path's components that
    /// lead to the object (a batch element's `events`, index), left out of a field's name.
    static func requestError(_ error: any Error, shape: String, pathStart: Int = 0) -> RequestError {
        switch error {
        case let error as RequestError:
            return error
        case DecodingError.typeMismatch(_, let context) where context.codingPath.count > pathStart:
            let field = context.codingPath.dropFirst(pathStart).map(\.stringValue).joined(separator: ".")
            return .invalid(ValidationError(field: field, rule: "must be a string"))
        case DecodingError.dataCorrupted(let context):
            // Foundation's own reason when it has one: "Too many nested arrays or dictionaries ...".
            let reason = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return .malformed("the request body is not valid UTF-8 JSON\(reason.map { " (\($0))" } ?? ""); it must be \(shape)")
        default:
            return .malformed("the request body must be \(shape)")
        }
    }
}

/// `{"events": [...]}`, each element decoded alone: one that cannot be decoded becomes its own
/// failure instead of failing the batch (and the array's decoding goes on past it).
private struct StrictBatch: Decodable {
    struct Element: Decodable {
        var result: Result<EventSubmission, RequestError>

        init(from decoder: any Decoder) {
            do {
                result = .success(try Strict<EventSubmission>(from: decoder).submission)
            } catch {
                // The path so far: "events", the index.
                result = .failure(RequestDecoding.requestError(error, shape: "a JSON object with the fields contentType, content, clientToken, connectionToken and instance", pathStart: 2))
            }
        }
    }

    var elements: [Element]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { $0 != "events" }) {
            throw RequestError.invalid(ValidationError(field: String(unknown.prefix(100)), rule: "is not a field of a batch: the only field is events"))
        }
        guard container.contains(AnyKey(stringValue: "events")) else {
            throw RequestError.invalid(ValidationError(field: "events", rule: "is required: an array of events"))
        }
        do {
            elements = try container.decode([Element].self, forKey: AnyKey(stringValue: "events"))
        } catch DecodingError.typeMismatch {
            throw RequestError.invalid(ValidationError(field: "events", rule: "must be an array of events"))
        }
    }
}

/// Any key of a JSON object, to check them all against the fields a type has.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A submission whose JSON object may hold only its own fields.
private protocol StrictlyDecoded: Decodable {
    /// Its fields, in the order an error lists them.
    static var fields: [String] { get }
    /// What it is, for an error: "an event", "a message".
    static var noun: String { get }
}

extension EventSubmission: StrictlyDecoded {
    static let fields = ["contentType", "content", "clientToken", "connectionToken", "instance", "participantToken", "connectParticipant"]
    static let noun = "an event"
}

extension MessageSubmission: StrictlyDecoded {
    static let fields = ["contentType", "content", "clientToken", "connectionToken", "instance", "participantToken", "connectParticipant"]
    static let noun = "a message"
}

extension DisconnectSubmission: StrictlyDecoded {
    static let fields = ["clientToken", "connectionToken", "instance", "participantToken", "connectParticipant"]
    static let noun = "a disconnect"
}

extension RetrySubmission: StrictlyDecoded {
    static let fields = ["connectionToken"]
    static let noun = "a retry"
}

/// A submission with every key of the object checked against its fields: an unknown one is
/// refused, naming the field it may have meant.
private struct Strict<Submission: StrictlyDecoded>: Decodable {
    var submission: Submission

    init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
        if let unknown = keys.sorted().first(where: { !Submission.fields.contains($0) }) {
            let suggestion = NearestName.suggestion(for: unknown, among: Submission.fields).map { "did you mean \($0)? " } ?? ""
            throw RequestError.invalid(ValidationError(
                field: String(unknown.prefix(100)),
                rule: "is not a field of \(Submission.noun): \(suggestion)the fields are \(Submission.fields.joined(separator: ", "))"
            ))
        }
        submission = try Submission(from: decoder)
    }
}
