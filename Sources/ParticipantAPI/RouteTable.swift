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

        package init(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping @Sendable (Request, DaemonRequestContext) async throws -> Response) {
            self.method = method
            self.path = path
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
            router.on(RouterPath(route.path), method: route.method, use: route.handler)
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
