#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import NIOHTTP1
import ParticipantWire
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a call to the daemon did not give the answer asked for.
public enum DaemonClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing answers on the socket: the daemon is not running, or the path or permissions are wrong.
    case unreachable(socketPath: String, reason: String)
    /// The daemon answered with an error.
    case api(status: Int, ErrorBody)
    /// The daemon answered something this client does not understand.
    case invalidResponse(String)
    /// A file of this host (not the daemon's) could not be written.
    case localFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreachable(let socketPath, let reason):
            "participantd is not reachable at \(socketPath): \(reason)"
        case .api(_, let body):
            "\(body.code): \(body.message)"
        case .invalidResponse(let reason):
            "participantd answered something unexpected: \(reason)"
        case .localFile(let path, let reason):
            "cannot write \(path): \(reason)"
        }
    }
}

/// The socket API seen from a local program: what `participantctl` and the tests use.
public struct DaemonClient: Sendable {
    public let socketPath: String
    let timeout: TimeAmount

    /// Each call is one request on a connection of its own (``SocketExchange``): a missing or dead
    /// socket fails at once, within 2 s at most, instead of being retried.
    public init(socketPath: String, timeout: Duration = .seconds(30)) {
        self.socketPath = socketPath
        self.timeout = TimeAmount(timeout)
    }

    /// `POST /v1/events`. Returns the answer and whether it stored a new event (202) or found the
    /// same ClientToken (200).
    public func submit(_ submission: EventSubmission) async throws(DaemonClientError) -> SubmitResponse {
        try await post(submission, to: "/v1/events")
    }

    /// `POST /v1/messages`: a message, answered as ``submit(_:)-(EventSubmission)`` answers an event.
    public func submit(_ submission: MessageSubmission) async throws(DaemonClientError) -> SubmitResponse {
        try await post(submission, to: "/v1/messages")
    }

    /// `POST /v1/disconnect`: the chat's disconnect, answered as ``submit(_:)-(EventSubmission)`` answers an event.
    public func submit(_ submission: DisconnectSubmission) async throws(DaemonClientError) -> SubmitResponse {
        try await post(submission, to: "/v1/disconnect")
    }

    /// `POST /v1/events/batch` with these submissions: one result per submission, in order.
    public func submitBatch(_ submissions: [EventSubmission]) async throws(DaemonClientError) -> BatchSubmitResponse {
        let encoder = WireCoding.encoder()
        var objects: [Data] = []
        for submission in submissions {
            do {
                objects.append(try encoder.encode(submission))
            } catch {
                throw .invalidResponse("cannot encode the submission: \(error)")
            }
        }
        return try await submitBatch(jsonObjects: objects)
    }

    /// `POST /v1/events/batch` with JSON objects as given (each what `POST /v1/events` takes), so
    /// the daemon judges each one, unknown fields included.
    public func submitBatch(jsonObjects: [Data]) async throws(DaemonClientError) -> BatchSubmitResponse {
        var body = Data(#"{"events":["#.utf8)
        for (index, object) in jsonObjects.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(object)
        }
        body.append(contentsOf: Array("]}".utf8))
        return try await call(.POST, "/v1/events/batch", body: body)
    }

    /// A submission as JSON to `path`: the answer to it.
    private func post(_ submission: some Encodable, to path: String) async throws(DaemonClientError) -> SubmitResponse {
        let body: Data
        do {
            body = try WireCoding.encoder().encode(submission)
        } catch {
            throw .invalidResponse("cannot encode the submission: \(error)")
        }
        return try await call(.POST, path, body: body)
    }

    /// `GET /v1/events/{clientToken}`: the caller's own item; an administrator's look-up names
    /// the item's owner (a uid) when several users have one with this ClientToken.
    public func event(clientToken: String, owner: UInt32? = nil) async throws(DaemonClientError) -> EventRecord {
        try await call(.GET, "/v1/events/" + Self.pathSegment(clientToken) + Self.ownerQuery(owner, first: true))
    }

    /// `?owner=UID` (or `&owner=UID`), or nothing.
    static func ownerQuery(_ owner: UInt32?, first: Bool) -> String {
        owner.map { (first ? "?" : "&") + "owner=\($0)" } ?? ""
    }

    /// `GET /v1/health`.
    public func health() async throws(DaemonClientError) -> HealthReport {
        try await call(.GET, "/v1/health")
    }

    /// Polls the event until it reaches a final state or `timeout` passes; returns the last record.
    public func waitForFinalState(clientToken: String, timeout: Duration) async throws(DaemonClientError) -> EventRecord {
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: timeout)
        var interval = Duration.milliseconds(20)
        while true {
            let record = try await event(clientToken: clientToken)
            if record.state.isFinal || clock.now >= end { return record }
            try? await Task.sleep(for: min(interval, end - clock.now))
            interval = min(interval * 2, .milliseconds(500))
        }
    }

    /// A ClientToken may hold any character; as a path segment everything but unreserved
    /// characters is percent-encoded (a `/` too).
    // MARK: Queue commands

    /// `GET /v1/events`: waiting states oldest first, others newest first.
    public func list(
        state: EventState? = nil, connectionHash: String? = nil, instance: String? = nil, owner: UInt32? = nil, limit: Int = 100
    ) async throws(DaemonClientError) -> [EventRecord] {
        var query: [String] = []
        if let owner { query.append("owner=\(owner)") }
        if let instance { query.append("instance=\(Self.pathSegment(instance))") }
        if let state { query.append("state=\(state.rawValue)") }
        if let connectionHash { query.append("connectionHash=\(Self.pathSegment(connectionHash))") }
        // Page by page (the daemon answers at most maxListPage a page), until `limit` or the end.
        var events: [EventRecord] = []
        var cursor: Int64?
        repeat {
            let page = min(Self.maxListPage, limit - events.count)
            let list: EventList = try await call(.GET, "/v1/events?" + (query + ["limit=\(page)"] + (cursor.map { ["cursor=\($0)"] } ?? [])).joined(separator: "&"))
            events += list.events
            cursor = list.nextCursor
        } while cursor != nil && events.count < limit
        return events
    }

    /// The most events the daemon lists in one page.
    static let maxListPage = 1_000

    /// `retry`, `hold`, `release` one event.
    public func change(_ action: QueueAction, clientToken: String, owner: UInt32? = nil) async throws(DaemonClientError) -> QueueChange {
        let path = "/v1/events/" + Self.pathSegment(clientToken)
        let query = Self.ownerQuery(owner, first: true)
        switch action {
        case .delete: return try await call(.DELETE, path + query)
        case .retry, .hold, .release: return try await call(.POST, path + "/" + action.rawValue + query)
        }
    }

    /// `participantctl retry TOKEN`: with `connectionToken`, the item is sent with it (a failed or
    /// expired item's own token is erased when it ends).
    public func retry(clientToken: String, connectionToken: String?, owner: UInt32? = nil) async throws(DaemonClientError) -> QueueChange {
        let path = "/v1/events/" + Self.pathSegment(clientToken) + "/retry" + Self.ownerQuery(owner, first: true)
        guard let connectionToken else { return try await call(.POST, path) }
        let body: Data
        do {
            body = try WireCoding.encoder().encode(RetrySubmission(connectionToken: connectionToken))
        } catch {
            throw .invalidResponse("the retry could not be encoded: \(error)")
        }
        return try await call(.POST, path, body: body)
    }

    public func retryAllFailed(owner: UInt32? = nil) async throws(DaemonClientError) -> QueueChange {
        try await call(.POST, "/v1/queue/retry-failed" + Self.ownerQuery(owner, first: true))
    }

    public func flush(owner: UInt32? = nil) async throws(DaemonClientError) -> QueueChange {
        try await call(.POST, "/v1/queue/flush" + Self.ownerQuery(owner, first: true))
    }

    public func stats(owner: UInt32? = nil) async throws(DaemonClientError) -> QueueStats {
        try await call(.GET, "/v1/queue/stats" + Self.ownerQuery(owner, first: true))
    }

    /// `GET /v1/backup` written to `path`: streamed into `path.partial` (created with mode 0600:
    /// it holds connection tokens; an existing file is refused), synced, then renamed into place,
    /// so that `path` is whole or absent. Returns its size in bytes.
    public func backup(to path: String) async throws(DaemonClientError) -> Int64 {
        guard !FileManager.default.fileExists(atPath: path) else { throw .localFile(path: path, reason: "it exists; give a new file name") }
        let partial = path + ".partial"
        let file: SystemPackage.FileDescriptor
        do {
            file = try SystemPackage.FileDescriptor.open(
                partial, .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec], permissions: [.ownerReadWrite]
            )
        } catch {
            throw .localFile(path: partial, reason: "\(error)")
        }
        var complete = false
        defer {
            try? file.close()
            if !complete { unlink(partial) }
        }
        let answer: SocketExchange.Answer
        do throws(SocketExchange.Failure) {
            answer = try await SocketExchange.exchange(
                socketPath: socketPath, method: .GET, path: "/v1/backup", body: nil, timeout: .hours(1), bodyLimit: 1 << 20
            ) { chunk in
                _ = try chunk.withUnsafeReadableBytes { try file.writeAll($0) }
            }
        } catch {
            if case .io(let cause) = error, cause is Errno { throw .localFile(path: partial, reason: "\(cause)") }
            throw .unreachable(socketPath: socketPath, reason: Self.reason(error))
        }
        guard answer.status == 200 else {
            throw Self.failure(status: answer.status, Data(answer.body.readableBytesView))
        }
        let written = answer.streamed
        if let expected = answer.headers.first(name: "Content-Length").flatMap(Int64.init), expected != written {
            throw .invalidResponse("the backup ended after \(written) of \(expected) bytes")
        }
        guard fsync(file.rawValue) == 0, rename(partial, path) == 0 else { throw .localFile(path: path, reason: String(cString: strerror(errno))) }
        complete = true
        return written
    }

    public enum QueueAction: String, Sendable, CaseIterable {
        case retry, hold, release, delete
    }

    static func pathSegment(_ value: String) -> String {
        // RFC 3986's unreserved characters as they are; every other byte of the UTF-8 as %XX.
        let hex = Array("0123456789ABCDEF".utf8)
        var encoded: [UInt8] = []
        encoded.reserveCapacity(value.utf8.count)
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.append(byte)
            default:
                encoded += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    private func call<Answer: Decodable>(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws(DaemonClientError) -> Answer {
        let answer: SocketExchange.Answer
        do throws(SocketExchange.Failure) {
            answer = try await SocketExchange.exchange(
                socketPath: socketPath, method: method, path: path, body: body.map(Array.init), timeout: timeout, bodyLimit: 16 * 1024 * 1024
            )
        } catch {
            throw .unreachable(socketPath: socketPath, reason: Self.reason(error))
        }
        let data = Data(answer.body.readableBytesView)
        guard (200..<300).contains(answer.status) else { throw Self.failure(status: answer.status, data) }
        do {
            return try WireCoding.decoder().decode(Answer.self, from: data)
        } catch {
            throw .invalidResponse("\(error)")
        }
    }

    /// An error answer: the daemon's `{"code", "message"}`, or the status and the text.
    private static func failure(status: Int, _ data: Data) -> DaemonClientError {
        let body = (try? JSONDecoder().decode(ErrorBody.self, from: data))
            ?? ErrorBody(code: "HTTP\(status)", message: String(decoding: data, as: UTF8.self))
        return .api(status: status, body)
    }

    private static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("No such file") || text.contains("ENOENT") { return "no socket at this path (is participantd running?)" }
        if text.contains("Connection refused") || text.contains("ECONNREFUSED") { return "connection refused (is participantd running?)" }
        if text.contains("Permission denied") || text.contains("EACCES") { return "permission denied (is this user in the socket's group?)" }
        return text
    }
}
