import AsyncHTTPClient
import Foundation
import NIOFoundationCompat
import NIOCore
import NIOHTTP1
import ParticipantWire

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
    let http: HTTPClient
    let timeout: TimeAmount

    /// An HTTP client for a local socket: a missing or dead socket fails at once instead of being
    /// retried, as AsyncHTTPClient's shared client does for remote hosts. Like `HTTPClient.shared`
    /// it lives as long as the process and is never shut down.
    public static let localHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(2))
        )
        configuration.connectionPool.retryConnectionEstablishment = false
        // A request waiting for a pooled connection fails after the connect timeout: with the
        // default 8 connections, 30 concurrent submissions on a loaded machine waited longer than
        // 2 s (getConnectionFromPoolTimeout). Local connections are cheap; the daemon takes 256
        // (api.maxConnections).
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    public init(socketPath: String, http: HTTPClient = DaemonClient.localHTTPClient, timeout: Duration = .seconds(30)) {
        self.socketPath = socketPath
        self.http = http
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
        let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .localFile(path: partial, reason: String(cString: strerror(errno))) }
        let file = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var complete = false
        defer {
            try? file.close()
            if !complete { unlink(partial) }
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(try request(.GET, "/v1/backup", body: nil), timeout: .hours(1))
        } catch let error as DaemonClientError {
            throw error
        } catch {
            throw .unreachable(socketPath: socketPath, reason: Self.reason(error))
        }
        guard response.status == .ok else {
            let data = (try? await response.body.collect(upTo: 1 << 20)).map { Data(buffer: $0) } ?? Data()
            throw Self.failure(status: Int(response.status.code), data)
        }
        var written: Int64 = 0
        do {
            for try await chunk in response.body {
                try file.write(contentsOf: Data(buffer: chunk))
                written += Int64(chunk.readableBytes)
            }
        } catch let error as DaemonClientError {
            throw error
        } catch {
            throw .localFile(path: partial, reason: "\(error)")
        }
        if let expected = response.headers.first(name: "Content-Length").flatMap(Int64.init), expected != written {
            throw .invalidResponse("the backup ended after \(written) of \(expected) bytes")
        }
        guard fsync(fd) == 0, rename(partial, path) == 0 else { throw .localFile(path: path, reason: String(cString: strerror(errno))) }
        complete = true
        return written
    }

    public enum QueueAction: String, Sendable, CaseIterable {
        case retry, hold, release, delete
    }

    static func pathSegment(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    private func call<Answer: Decodable>(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws(DaemonClientError) -> Answer {
        let request = try request(method, path, body: body)
        let status: Int
        let data: Data
        do {
            let response = try await http.execute(request, timeout: timeout)
            status = Int(response.status.code)
            data = Data(buffer: try await response.body.collect(upTo: 16 * 1024 * 1024))
        } catch {
            throw .unreachable(socketPath: socketPath, reason: Self.reason(error))
        }
        guard (200..<300).contains(status) else { throw Self.failure(status: status, data) }
        do {
            return try WireCoding.decoder().decode(Answer.self, from: data)
        } catch {
            throw .invalidResponse("\(error)")
        }
    }

    /// A request to `path` on the daemon's socket, with a JSON body if any.
    private func request(_ method: HTTPMethod, _ path: String, body: Data?) throws(DaemonClientError) -> HTTPClientRequest {
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: path) else {
            throw .unreachable(socketPath: socketPath, reason: "not a usable socket path")
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
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
