import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ParticipantInput
import ParticipantOutbox
import ParticipantWire

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
