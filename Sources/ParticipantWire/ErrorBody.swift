/// The JSON body of every error the socket API returns: `{"code": "...", "message": "..."}`.
///
/// Also used for an event's `lastError`, where `code` is the service's error code
/// (`AccessDeniedException`, ...) or one of the daemon's own (`ConnectionError`, `Timeout`, ...).
public struct ErrorBody: Codable, Sendable, Equatable, Error {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// The stable error codes of the socket API (documented in the README).
public enum APIErrorCode {
    /// 400: a field breaks a rule; the message names the field and the rule.
    public static let validation = "ValidationException"
    /// 400: the body is not a JSON object (not JSON, not UTF-8, nested too deeply), or the request
    /// is not HTTP the server can parse.
    public static let malformedRequest = "MalformedRequest"
    /// 415: the body is declared as something other than JSON.
    public static let unsupportedMediaType = "UnsupportedMediaType"
    /// 405: the path exists, not with this method; the `Allow` header lists the methods.
    public static let methodNotAllowed = "MethodNotAllowed"
    /// 431: more header bytes or header fields than `api.maxHeaderBytes` / `api.maxHeaderCount`.
    public static let headersTooLarge = "RequestHeaderFieldsTooLarge"
    /// 408: the request did not arrive complete within `api.requestTimeoutSeconds`; the connection is closed.
    public static let requestTimeout = "RequestTimeout"
    /// 507: the disk (or `outbox.maxDatabaseMegabytes`) is full: nothing was stored; submit again later.
    public static let storageFull = "StorageFull"
    /// 409: the ClientToken is stored with other parameters.
    public static let idempotentParameterMismatch = "IdempotentParameterMismatch"
    /// 413: the body is larger than `api.maxBodyBytes`.
    public static let payloadTooLarge = "PayloadTooLarge"
    /// 410: the service refused this connection token for good (403): the chat ended or the token expired.
    public static let connectionRejected = "ConnectionRejected"
    /// 409: the service refused receipts for this connection (409 on a receipt).
    public static let receiptsRefused = "ReceiptsRefused"
    /// 409: the chat's participant was disconnected (`POST /v1/disconnect`): it takes nothing more.
    public static let chatDisconnected = "ChatDisconnected"
    /// 503 with Retry-After: the outbox holds `outbox.capacity` waiting events.
    public static let outboxFull = "OutboxFull"
    /// 503: the submitting user's programs have their share of the outbox waiting (`access.peerMaxWaitingShare`).
    public static let peerOutboxFull = "PeerOutboxFull"
    /// 409: a queue command does not apply to the event in its state (the message names the state and the rule).
    public static let invalidState = "InvalidState"
    /// 409: an administrator's queue command named a ClientToken that several users' items have
    /// (each user's tokens are its own): it must name the user (`owner=UID`).
    public static let ambiguousClientToken = "AmbiguousClientToken"
    /// 403: the peer is not on the allow list (`access.allowUsers`, `access.allowGroups`), or a
    /// queue command named another user's items (`owner=UID`) from a peer that is not an
    /// administrator (root, participantd's user, `access.adminGroups`).
    public static let accessDenied = "AccessDenied"
    /// 404: no event with that ClientToken.
    public static let eventNotFound = "EventNotFound"
    /// 404: no such path.
    public static let notFound = "NotFound"
    /// 503: the daemon is shutting down or its outbox is not open.
    public static let unavailable = "ServiceUnavailable"
    /// 500: the outbox could not store the event; nothing was acknowledged.
    public static let storage = "StorageError"
    /// 500: anything else.
    public static let internalError = "InternalError"
}
