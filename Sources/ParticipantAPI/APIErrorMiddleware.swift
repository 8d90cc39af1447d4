import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ParticipantInput
import ParticipantOutbox
import ParticipantWire

/// Turns every error that reaches the edge into the JSON error body, so clients see one format:
/// unknown paths become 404 `NotFound`, a known path with another method 405 `MethodNotAllowed`,
/// anything unexpected 500 `InternalError` (and a log line).
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The methods a path answers to; empty for an unknown path.
    let allowedMethods: @Sendable (String) -> [HTTPRequest.Method]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            guard error.status == .notFound else {
                throw APIError(error.status, code: "HTTP\(error.status.code)", message: error.body ?? error.status.reasonPhrase)
            }
            let allowed = allowedMethods(request.uri.path)
            guard !allowed.isEmpty else {
                throw APIError(.notFound, code: APIErrorCode.notFound, message: "no such endpoint: \(request.method) \(request.uri.path)")
            }
            let names = allowed.map(\.rawValue).joined(separator: ", ")
            var methodError = APIError(.methodNotAllowed, code: APIErrorCode.methodNotAllowed,
                                       message: "\(request.uri.path) answers \(names), not \(request.method)")
            methodError.headers = [.allow: names]
            throw methodError
        } catch {
            context.logger.error("Request failed", metadata: ["error": "\(error)", "http.path": "\(request.uri.path)"])
            throw APIError(.internalServerError, code: APIErrorCode.internalError, message: "internal error; see the daemon's log")
        }
    }
}
