import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import ParticipantOutbox
import ParticipantWire

/// SendEvent and SendMessage over HTTPS with AsyncHTTPClient: `POST /participant/event` or
/// `/participant/message`, rest-json, the connection token in `X-Amz-Bearer`, no SigV4 (the
/// service does not use it).
///
/// Keep-alive connections come from the client's pool. TLS trusts the system's roots, plus the
/// certificates of `upstream.caFile` (or those alone with `upstream.caFileOnly`); certificates and
/// host names are always verified. Through an HTTP proxy (``UpstreamProxy``), HTTPS goes in a
/// `CONNECT` tunnel. Redirects are refused: following one would hand the connection token to
/// another host.
public struct HTTPParticipantService: ParticipantService {
    public struct Configuration: Sendable, Equatable {
        /// `https://participant.connect.{region}.amazonaws.com`, or a stand-in's address.
        public var endpoint: String
        public var connectTimeout: Duration = .seconds(5)
        /// The whole request, from asking for a connection to the last byte of the answer.
        public var requestTimeout: Duration = .seconds(10)
        /// Keep-alive connections kept per host.
        public var maxConnections: Int = 16
        /// The proxy requests go through; `nil`: direct.
        public var proxy: UpstreamProxy?
        /// Certificates (PEM) trusted besides the system's roots, or instead of them (`caFileOnly`).
        public var caFile: String?
        public var caFileOnly = false

        public init(endpoint: String) {
            self.endpoint = endpoint
        }
    }

    /// The largest answer read from the service; a SendEvent or SendMessage answer is under 300 bytes.
    static let maxResponseBytes = 64 * 1024

    let configuration: Configuration
    let client: HTTPClient
    let userAgent: String

    public init(configuration: Configuration, client: HTTPClient, userAgent: String = "participantd/\(DaemonVersion.current)") {
        self.configuration = configuration
        self.client = client
        self.userAgent = userAgent
    }

    /// An HTTP client with the connect timeout, pool size, proxy and trust of `configuration`.
    public static func makeHTTPClient(_ configuration: Configuration) throws(ConfigurationError) -> HTTPClient {
        var clientConfiguration = HTTPClient.Configuration(
            tlsConfiguration: try tlsConfiguration(configuration),
            redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(configuration.connectTimeout)),
            connectionPool: .init(
                idleTimeout: .seconds(60),
                concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.maxConnections
            ),
            proxy: configuration.proxy.map { proxy in
                .server(
                    host: proxy.host, port: proxy.port,
                    authorization: proxy.username.map { .basic(username: $0, password: proxy.password ?? "") }
                )
            }
        )
        clientConfiguration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration)
    }

    /// Full verification always; the system's roots, with `caFile`'s certificates added, or alone.
    static func tlsConfiguration(_ configuration: Configuration) throws(ConfigurationError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        if let caFile = configuration.caFile {
            let certificates = try loadCertificates(caFile)
            if configuration.caFileOnly {
                tls.trustRoots = .certificates(certificates)
            } else {
                tls.additionalTrustRoots = [.certificates(certificates)]
            }
        }
        return tls
    }

    /// The certificates of a PEM bundle; a file that is missing, unreadable or holds none is an
    /// error naming `upstream.caFile`.
    public static func loadCertificates(_ path: String) throws(ConfigurationError) -> [NIOSSLCertificate] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ConfigurationError(key: "upstream.caFile", rule: "cannot read \(path): \(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")")
        }
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw ConfigurationError(key: "upstream.caFile", rule: "\(path) is not a PEM certificate bundle: \(error)")
        }
        guard !certificates.isEmpty else {
            throw ConfigurationError(key: "upstream.caFile", rule: "\(path) holds no PEM certificate")
        }
        return certificates
    }

    public func send(_ request: ServiceRequest) async -> ServiceCallResult {
        let httpRequest = Self.httpRequest(for: request, endpoint: configuration.endpoint, userAgent: userAgent)
        do {
            let response = try await client.execute(httpRequest, timeout: TimeAmount(configuration.requestTimeout))
            let body = try await response.body.collect(upTo: Self.maxResponseBytes)
            return Self.classify(status: Int(response.status.code), headers: response.headers, body: Data(buffer: body), operation: request.operation)
        } catch {
            return .transient(Self.describe(error, proxy: configuration.proxy, endpoint: configuration.endpoint), status: nil)
        }
    }

    public func createConnection(participantToken: String, connectParticipant: Bool) async -> ConnectionCallResult {
        var httpRequest = HTTPClientRequest(url: configuration.endpoint + "/participant/connection")
        httpRequest.method = .POST
        httpRequest.headers.add(name: "Content-Type", value: "application/json")
        httpRequest.headers.add(name: "User-Agent", value: userAgent)
        httpRequest.headers.add(name: "X-Amz-Bearer", value: participantToken)
        httpRequest.body = .bytes(ByteBuffer(bytes: Self.connectionBody(connectParticipant: connectParticipant)))
        do {
            let response = try await client.execute(httpRequest, timeout: TimeAmount(configuration.requestTimeout))
            let body = try await response.body.collect(upTo: Self.maxResponseBytes)
            return Self.classifyConnection(status: Int(response.status.code), headers: response.headers, body: Data(buffer: body))
        } catch {
            return .transient(Self.describe(error, proxy: configuration.proxy, endpoint: configuration.endpoint), status: nil)
        }
    }

    /// `{"ConnectParticipant": BOOL, "Type": ["CONNECTION_CREDENTIALS"]}`.
    static func connectionBody(connectParticipant: Bool) -> Data {
        Data(#"{"ConnectParticipant":\#(connectParticipant),"Type":["CONNECTION_CREDENTIALS"]}"#.utf8)
    }

    /// Sorts CreateParticipantConnection's answer: the credentials, refused for good, or worth retrying.
    public static func classifyConnection(status: Int, headers: HTTPHeaders, body: Data) -> ConnectionCallResult {
        if status == 200 {
            struct Output: Decodable {
                struct Credentials: Decodable {
                    var ConnectionToken: String
                    var Expiry: String
                }
                var ConnectionCredentials: Credentials?
            }
            guard let credentials = (try? JSONDecoder().decode(Output.self, from: body))?.ConnectionCredentials,
                  let expiry = WireCoding.parseTimestamp(credentials.Expiry) else {
                return .transient(ErrorBody(code: "InvalidResponse", message: "CreateParticipantConnection answered 200 without ConnectionCredentials {ConnectionToken, Expiry}"), status: 200)
            }
            return .created(connectionToken: credentials.ConnectionToken, expiry: expiry)
        }
        let error = serviceError(status: status, headers: headers, body: body)
        return ServiceAnswer.isRetryable(status: status) ? .transient(error, status: status) : .rejected(error, status: status)
    }

    /// The request for one item: what goes on the wire, before AsyncHTTPClient sends it.
    public static func httpRequest(for request: ServiceRequest, endpoint: String, userAgent: String) -> HTTPClientRequest {
        var httpRequest = HTTPClientRequest(url: endpoint + request.operation.path)
        httpRequest.method = .POST
        httpRequest.headers.add(name: "Content-Type", value: "application/json")
        httpRequest.headers.add(name: "User-Agent", value: userAgent)
        httpRequest.headers.add(name: "X-Amz-Bearer", value: request.connectionToken)
        httpRequest.body = .bytes(ByteBuffer(bytes: encodeBody(request)))
        return httpRequest
    }

    /// `{"ContentType": ..., "Content": ..., "ClientToken": ...}`; `Content` left out when absent;
    /// DisconnectParticipant's `{"ClientToken": ...}` alone.
    static func encodeBody(_ request: ServiceRequest) -> Data {
        let body = request.operation == .disconnectParticipant
            ? SendEventBody(contentType: nil, content: nil, clientToken: request.clientToken)
            : SendEventBody(contentType: request.contentType, content: request.content, clientToken: request.clientToken)
        // Keys sorted for a stable wire form; three optional strings always encode.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(body)) ?? Data()
    }

    /// Sorts an answer into accepted, rejected for good, or worth retrying.
    public static func classify(status: Int, headers: HTTPHeaders, body: Data, operation: ServiceOperation = .sendEvent) -> ServiceCallResult {
        if status == 200, operation == .disconnectParticipant {
            // DisconnectParticipantResponse has no members.
            return .accepted(id: "", absoluteTime: "")
        }
        if status == 200 {
            struct Output: Decodable {
                struct Metadata: Decodable {
                    var MessageProcessingStatus: String?
                }
                var Id: String
                var AbsoluteTime: String
                /// SendMessage's answer only.
                var MessageMetadata: Metadata?
            }
            guard let output = try? JSONDecoder().decode(Output.self, from: body) else {
                // The service may well have the event; a retry with the same ClientToken is safe.
                return .transient(ErrorBody(code: "InvalidResponse", message: "the service answered 200 without Id and AbsoluteTime"), status: 200)
            }
            return .accepted(id: output.Id, absoluteTime: output.AbsoluteTime, processingStatus: output.MessageMetadata?.MessageProcessingStatus)
        }
        let error = serviceError(status: status, headers: headers, body: body)
        return ServiceAnswer.isRetryable(status: status) ? .transient(error, status: status) : .rejected(error, status: status)
    }

    /// The error code from `x-amzn-ErrorType` (`Code:namespace`), else the body's `__type` or
    /// `code`; the message from the body's `message` or `Message`.
    static func serviceError(status: Int, headers: HTTPHeaders, body: Data) -> ErrorBody {
        let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        var code = headers.first(name: "x-amzn-ErrorType")
            .map { String($0.split(separator: ":", maxSplits: 1).first ?? "") }
        if code?.isEmpty ?? true, let type = (object["__type"] ?? object["code"]) as? String {
            code = String(type.split(separator: "#").last ?? "")
        }
        let fallbackCode = ServiceErrorCode.code(forStatus: status)
        let message = (object["message"] ?? object["Message"]) as? String
            ?? "the service answered HTTP \(status) without a message"
        return ErrorBody(code: (code?.isEmpty ?? true) ? fallbackCode : code!, message: message)
    }

    /// Why an attempt got no answer, in words an operator can act on: a timeout, a TLS failure
    /// (certificate not trusted, or not for this host), a proxy that refused or wants credentials,
    /// or a connection that failed. Never the proxy's credentials.
    static func describe(_ error: any Error, proxy: UpstreamProxy? = nil, endpoint: String = "") -> ErrorBody {
        let text = String(describing: error)
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .deadlineExceeded, .readTimeout, .writeTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return ErrorBody(code: "Timeout", message: "the service did not answer in time (\(error))")
            case .proxyAuthenticationRequired:
                return ErrorBody(code: "ProxyError", message: "proxy \(proxy?.description ?? "") refused CONNECT: 407 Proxy Authentication Required (check the credentials in upstream.proxy or HTTPS_PROXY)")
            case .invalidProxyResponse:
                // AsyncHTTPClient does not pass the proxy's status on: only that it was not 2xx.
                return ErrorBody(code: "ProxyError", message: "proxy \(proxy?.description ?? "") refused CONNECT to \(Self.hostAndPort(endpoint)) (its answer was not 2xx)")
            case .httpProxyHandshakeTimeout:
                return ErrorBody(code: "ProxyError", message: "proxy \(proxy?.description ?? "") did not answer CONNECT in time")
            default:
                break
            }
        }
        if error is NIOSSLExtraError, text.contains("hostname") || text.contains("Hostname") {
            return ErrorBody(code: "TLSError", message: "certificate verify failed: the service's certificate is not for \(Self.hostAndPort(endpoint)) (\(text))")
        }
        if error is NIOSSLError || error is BoringSSLError || text.contains("CERTIFICATE_VERIFY_FAILED") {
            let reason = text.contains("CERTIFICATE_VERIFY_FAILED")
                ? "certificate verify failed: unknown CA (the service's certificate is not signed by a trusted root; upstream.caFile adds one)"
                : "TLS handshake failed"
            return ErrorBody(code: "TLSError", message: "\(reason) (\(text))")
        }
        if let proxy {
            return ErrorBody(code: "ConnectionError", message: "through proxy \(proxy): \(text)")
        }
        return ErrorBody(code: "ConnectionError", message: text)
    }

    /// `host:port` of a URL, for messages.
    static func hostAndPort(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return url }
        return "\(host):\(components.port ?? (components.scheme == "https" ? 443 : 80))"
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
