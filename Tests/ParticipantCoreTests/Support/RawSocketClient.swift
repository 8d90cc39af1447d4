import AsyncHTTPClient
import Foundation
import NIOFoundationCompat
import NIOCore

/// Sends any bytes as a request body over the daemon's Unix socket, for inputs `DaemonClient` would never send.
struct RawSocketClient {
    let path: String

    func request(method: String, path uri: String, body: String? = nil) async throws -> (Int, Data) {
        var request = HTTPClientRequest(url: URL(httpURLWithSocketPath: path, uri: uri)!.absoluteString)
        request.method = .init(rawValue: method)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let data = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Data(buffer: data))
    }
}
