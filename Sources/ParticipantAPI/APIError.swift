import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ParticipantInput
import ParticipantOutbox
import ParticipantWire

/// An error at the API's edge: an HTTP status and the JSON body `{"code", "message"}`.
///
/// The code is in the `x-amzn-ErrorType` header too, where AWS SDKs look for it.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var body: ErrorBody
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.body = ErrorBody(code: code, message: message)
    }

    /// Bad input, as decoding and validation found it.
    package init(_ error: RequestError) {
        switch error {
        case .unsupportedMediaType(let message):
            self.init(.unsupportedMediaType, code: APIErrorCode.unsupportedMediaType, message: message)
        case .malformed(let message):
            self.init(.badRequest, code: APIErrorCode.malformedRequest, message: message)
        case .invalid(let validation):
            self.init(.badRequest, code: APIErrorCode.validation, message: "\(validation.field) \(validation.rule)")
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try SocketAPI.json(body, status: status)
        response.headers[.amznErrorType] = body.code
        response.headers.append(contentsOf: headers)
        return response
    }
}

extension BatchResult {
    /// A batch element refused as `POST /v1/events` would refuse it alone.
    init(_ error: APIError) {
        self.init(status: Int(error.status.code), body: .error(error.body))
    }
}

extension HTTPField.Name {
    /// Where AWS SDKs read an error's code.
    static let amznErrorType = HTTPField.Name("x-amzn-ErrorType")!
}

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

/// The routes of one listener: registered on a router, and known to the error middleware so that
/// a known path with another method is 405, not 404.
package struct RouteTable: Sendable {
    package struct Route: Sendable {
        let method: HTTPRequest.Method
        let path: String
        let handler: @Sendable (Request, DaemonRequestContext) async throws -> Response
        /// A queue-changing command: limited to `access.adminGroups` when that is set.
        let changesQueue: Bool

        package init(_ method: HTTPRequest.Method, _ path: String, changesQueue: Bool = false, _ handler: @escaping @Sendable (Request, DaemonRequestContext) async throws -> Response) {
            self.method = method
            self.path = path
            self.changesQueue = changesQueue
            self.handler = handler
        }
    }

    let routes: [Route]

    package init(_ routes: [Route]) {
        self.routes = routes
    }

    package func router(access: ResolvedAccess = .open) -> Router<DaemonRequestContext> {
        let router = Router(context: DaemonRequestContext.self)
        let table = self
        router.add(middleware: APIErrorMiddleware { path in table.allowedMethods(for: path) })
        router.add(middleware: AccessMiddleware(access: access))
        for route in routes {
            guard route.changesQueue else {
                router.on(RouterPath(route.path), method: route.method, use: route.handler)
                continue
            }
            let handler = route.handler
            router.on(RouterPath(route.path), method: route.method) { request, context in
                guard access.allowsChanges(context.connectionPeer) else {
                    context.logger.warning("Queue command refused: the peer is not in access.adminGroups", metadata: AccessMiddleware.metadata(context, request))
                    throw APIError(.forbidden, code: APIErrorCode.accessDenied,
                                   message: "changing the queue is limited to the groups in access.adminGroups; uid \(context.peer.map { String($0.uid) } ?? "unknown") is in none of them")
                }
                return try await handler(request, context)
            }
        }
        return router
    }

    func allowedMethods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return routes.filter { route in
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: false)
            guard pattern.count == segments.count else { return false }
            return zip(pattern, segments).allSatisfy { expected, actual in
                expected.hasPrefix("{") ? !actual.isEmpty : expected == actual
            }
        }.map(\.method)
    }
}

/// Refuses every request of a peer outside `access.allowUsers` / `access.allowGroups` with 403
/// `AccessDenied` and a log line naming its user id and process.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = DaemonRequestContext
    let access: ResolvedAccess

    func handle(_ request: Request, context: DaemonRequestContext, next: (Request, DaemonRequestContext) async throws -> Response) async throws -> Response {
        guard access.allows(context.connectionPeer) else {
            context.logger.warning("Request refused: the peer is not on the allow list (access.allowUsers, access.allowGroups)", metadata: Self.metadata(context, request))
            throw APIError(.forbidden, code: APIErrorCode.accessDenied,
                           message: "uid \(context.peer.map { String($0.uid) } ?? "unknown") may not use this socket: it is not in access.allowUsers or access.allowGroups")
        }
        return try await next(request, context)
    }

    static func metadata(_ context: DaemonRequestContext, _ request: Request) -> Logger.Metadata {
        var metadata = PeerCredentials.metadata(context)
        if let gid = context.peer?.gid { metadata["peer.gid"] = "\(gid)" }
        metadata["http.method"] = "\(request.method.rawValue)"
        metadata["http.path"] = "\(request.uri.path)"
        return metadata
    }
}
