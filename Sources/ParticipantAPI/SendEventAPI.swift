import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ParticipantInput
import ParticipantOutbox
import ParticipantWire

/// `POST /participant/event` and `POST /participant/message`: SendEvent and SendMessage as the
/// Amazon Connect Participant Service answers them, so that a program using an AWS SDK switches
/// to the daemon by changing its endpoint URL. (A message's answer adds the service's
/// `MessageMetadata` once the service has answered.)
///
/// The request is the service's: `X-Amz-Bearer` holds the connection token, the body
/// `{"ContentType", "Content", "ClientToken"}`; an `Authorization` header (SDKs that sign) is
/// ignored. The SDK's ClientToken is the outbox's idempotency key, so the SDK's retries dedupe.
///
/// The event is stored, then the answer waits up to `aws.waitForDeliverySeconds` for the
/// service's own answer:
/// - sent: 200 with the service's `Id` and `AbsoluteTime`;
/// - refused by the service: its error (status, `x-amzn-ErrorType`, `{"message"}`);
/// - still waiting (or superseded, or expired) when the wait ends: 200 with `Id` set to
///   `<state>:<ClientToken>` and `AbsoluteTime` the time the daemon accepted the event. The
///   header `x-participantd-event-state` says which; the service's Id appears later in
///   `GET /v1/events/{clientToken}`.
///
/// The daemon's own refusals take the service's names, so that SDKs raise their usual exceptions:
/// bad input is `ValidationException` (400), a full outbox `ThrottlingException` (429, which SDKs
/// retry), a refused connection `AccessDeniedException` (403), refused receipts
/// `ConflictException` (409), a storage failure `InternalServerException` (500, retried).
extension DaemonAPI {
    static let bearerHeader = HTTPField.Name("X-Amz-Bearer")!
    static let eventStateHeader = HTTPField.Name("x-participantd-event-state")!

    /// SendEvent and SendMessage for the default instance, and for a named one: an SDK's endpoint
    /// URL of `http://HOST:PORT/instances/NAME` makes its requests arrive at
    /// `/instances/NAME/participant/event` (or `/message`).
    var sendEventRoutes: [RouteTable.Route] {
        ServiceRoute.allCases.flatMap { operation -> [RouteTable.Route] in
            [
                .init(.post, "/participant/\(operation.rawValue)") { request, context in
                    do {
                        return try await sendItem(operation, request, instance: nil, context: context)
                    } catch {
                        throw error.asServiceError
                    }
                },
                .init(.post, "/instances/{instance}/participant/\(operation.rawValue)") { request, context in
                    do {
                        let segment = try context.parameters.require("instance")
                        return try await sendItem(operation, request, instance: segment.removingPercentEncoding ?? segment, context: context)
                    } catch {
                        throw error.asServiceError
                    }
                },
            ]
        }
    }

    /// The service's operations the SDK route takes, by the last segment of their path.
    enum ServiceRoute: String, CaseIterable {
        case event, message, disconnect
    }

    func sendItem(_ operation: ServiceRoute, _ request: Request, instance: String?, context: DaemonRequestContext) async throws(APIError) -> Response {
        let bearer = request.headers[Self.bearerHeader]
        let item: ValidatedItem
        do {
            item = try await decodedBody(request, maxBodyBytes: configuration.maxBodyBytes) { body throws(APIError) in
                do throws(RequestError) {
                    return switch operation {
                    case .event: .event(try RequestDecoding.sendEventRequest(body: body, bearer: bearer, instance: instance))
                    case .message: .message(try RequestDecoding.sendMessageRequest(body: body, bearer: bearer, instance: instance))
                    case .disconnect: .disconnect(try RequestDecoding.disconnectParticipantRequest(body: body, bearer: bearer, instance: instance))
                    }
                } catch {
                    throw APIError(error)
                }
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.serviceUnavailable, code: APIErrorCode.unavailable, message: "participantd is shutting down")
        }
        do {
            try configuration.checkInstance(item.instance, field: RequestDecoding.serviceFieldNames["instance"] ?? "instance")
        } catch {
            throw APIError(.invalid(error))
        }
        let stored: StoredEvent
        switch try await store(item, peer: context.peerID, logger: context.logger) {
        case .created(let event), .duplicate(let event): stored = event
        }
        let record = await awaitOutcome(stored.record, of: stored.peer)
        do {
            return try serviceAnswer(record)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.internalServerError, code: APIErrorCode.internalError, message: "the answer could not be encoded: \(error)")
        }
    }

    /// The record once it is final, or as it is when `aws.waitForDeliverySeconds` have passed.
    func awaitOutcome(_ record: EventRecord, of peer: Int64) async -> EventRecord {
        guard !record.state.isFinal, configuration.deliveryWait > .zero else { return record }
        var record = record
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: configuration.deliveryWait)
        while true {
            // Registered before the read: an outcome recorded in between still wakes the wait.
            let registration = outbox.outcomes.register(record.clientToken)
            if let current = try? await outbox.event(clientToken: record.clientToken, in: .peer(peer))?.record {
                record = current
            }
            let remaining = end - clock.now
            if record.state.isFinal || remaining <= .zero || Task.isCancelled {
                outbox.outcomes.end(registration)
                return record
            }
            await outbox.outcomes.wait(registration, timeout: remaining)
        }
    }

    func serviceAnswer(_ record: EventRecord) throws -> Response {
        if record.state == .failed, let error = record.lastError {
            throw APIError(HTTPResponse.Status(code: ServiceErrorCode.status(forCode: error.code)), code: error.code, message: error.message)
        }
        let id: String
        let absoluteTime: String
        if record.state == .sent, let sentId = record.id, let sentTime = record.absoluteTime {
            (id, absoluteTime) = (sentId, sentTime)
        } else {
            (id, absoluteTime) = ("\(record.state.rawValue):\(record.clientToken)", WireCoding.formatTimestamp(record.acceptedAt))
        }
        var response = if record.kind == .disconnect {
            // DisconnectParticipantResponse has no members.
            Self.response(Array("{}\n".utf8), status: .ok)
        } else if record.kind == .message {
            // The service's MessageMetadata once it answered; none before.
            try Self.json(SendMessageOutput(
                id: id, absoluteTime: absoluteTime,
                messageMetadata: record.processingStatus.map { SendMessageOutput.Metadata(messageProcessingStatus: $0) }
            ), status: .ok)
        } else {
            try Self.json(SendEventOutput(id: id, absoluteTime: absoluteTime), status: .ok)
        }
        response.headers[Self.eventStateHeader] = record.state.rawValue
        return response
    }
}

extension Error {
    /// The daemon's refusal in the service's terms: its code in `x-amzn-ErrorType` and the body
    /// (`{"code", "message"}`: SDKs read `message`, and the code from the header).
    var asServiceError: APIError {
        guard let error = self as? APIError else {
            return APIError(.internalServerError, code: "InternalServerException", message: "internal error; see the daemon's log")
        }
        let (status, code): (HTTPResponse.Status, String) = switch error.body.code {
        case APIErrorCode.validation, APIErrorCode.malformedRequest, APIErrorCode.idempotentParameterMismatch,
            APIErrorCode.payloadTooLarge, APIErrorCode.unsupportedMediaType:
            // The status stays (413, 415 say more than 400); the code is the one SDKs model.
            (error.status == .conflict ? .badRequest : error.status, "ValidationException")
        // The service refuses a disconnected participant's connection token with a 403.
        case APIErrorCode.connectionRejected, APIErrorCode.chatDisconnected: (.forbidden, "AccessDeniedException")
        case APIErrorCode.receiptsRefused: (.conflict, "ConflictException")
        case APIErrorCode.outboxFull, APIErrorCode.peerOutboxFull: (.tooManyRequests, "ThrottlingException")
        case APIErrorCode.unavailable: (.serviceUnavailable, "ServiceUnavailableException")
        case APIErrorCode.storageFull, APIErrorCode.storage, APIErrorCode.internalError: (.internalServerError, "InternalServerException")
        default: (error.status, error.body.code)
        }
        var serviceError = APIError(status, code: code, message: error.body.message)
        serviceError.headers = error.headers
        return serviceError
    }
}
