import Foundation
import Hummingbird
import ParticipantWire

/// An error at the socket API's edge: an HTTP status and the JSON body `{"code", "message"}`.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var body: ErrorBody
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.body = ErrorBody(code: code, message: message)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try SocketAPI.json(body, status: status)
        response.headers.append(contentsOf: headers)
        return response
    }

    static func validation(_ error: ValidationError) -> APIError {
        APIError(.badRequest, code: APIErrorCode.validation, message: "\(error.field) \(error.rule)")
    }
}

/// Turns every error that reaches the edge into the JSON error body, so clients see one format:
/// router misses become 404 `NotFound`, anything unexpected 500 `InternalError` (and a log line).
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let code = error.status == .notFound ? APIErrorCode.notFound : "HTTP\(error.status.code)"
            let message = error.status == .notFound
                ? "no such endpoint: \(request.method) \(request.uri.path)"
                : (error.body ?? error.status.reasonPhrase)
            throw APIError(error.status, code: code, message: message)
        } catch {
            context.logger.error("Request failed", metadata: ["error": "\(error)", "http.path": "\(request.uri.path)"])
            throw APIError(.internalServerError, code: APIErrorCode.internalError, message: "internal error; see the daemon's log")
        }
    }
}
