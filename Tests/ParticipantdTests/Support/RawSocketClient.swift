import AsyncHTTPClient
import Foundation
import ParticipantTestSupport
import NIOFoundationCompat
import NIOCore

/// Sends any bytes as a request body over the daemon's Unix socket, for inputs `DaemonClient` would never send.
struct RawSocketClient {
    let path: String
    /// How long a request may take, its answer included.
    var timeout: Duration = .seconds(10)

    func request(method: String, path uri: String, body: String? = nil) async throws -> (Int, Data) {
        let (status, _, data) = try await requestWithHeaders(method: method, path: uri, body: body)
        return (status, data)
    }

    func requestWithHeaders(
        method: String, path uri: String, body: String? = nil, headers extra: [(String, String)] = [], contentType: String? = "application/json"
    ) async throws -> (Int, [String: String], Data) {
        var request = HTTPClientRequest(url: URL(httpURLWithSocketPath: path, uri: uri)!.absoluteString)
        request.method = .init(rawValue: method)
        if let body {
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
            request.body = .bytes(ByteBuffer(string: body))
        }
        for (name, value) in extra {
            request.headers.add(name: name, value: value)
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(timeout / .nanoseconds(1))))
        let data = try await response.body.collect(upTo: 1 << 20)
        let headers = Dictionary(response.headers.map { ($0.name.lowercased(), $0.value) }) { first, _ in first }
        return (Int(response.status.code), headers, Data(buffer: data))
    }
}
