import AsyncHTTPClient
import Foundation
import NIOFoundationCompat
import NIOCore

/// Sends any bytes as a request body over the daemon's Unix socket, for inputs `DaemonClient` would never send.
struct RawSocketClient {
    let path: String

    func request(method: String, path uri: String, body: String? = nil) async throws -> (Int, Data) {
        let (status, _, data) = try await requestWithHeaders(method: method, path: uri, body: body)
        return (status, data)
    }

    func requestWithHeaders(method: String, path uri: String, body: String? = nil) async throws -> (Int, [String: String], Data) {
        var request = HTTPClientRequest(url: URL(httpURLWithSocketPath: path, uri: uri)!.absoluteString)
        request.method = .init(rawValue: method)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let data = try await response.body.collect(upTo: 1 << 20)
        let headers = Dictionary(response.headers.map { ($0.name, $0.value) }) { first, _ in first }
        return (Int(response.status.code), headers, Data(buffer: data))
    }
}
