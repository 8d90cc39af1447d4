import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ParticipantInput
import ParticipantOutbox
import ParticipantWire

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
