import AsyncHTTPClient
import ParticipantDelivery
import ServiceLifecycle

/// The upstream HTTP clients as a service of the group: it waits for the shutdown (or the group's
/// cancellation), then shuts the clients down. First in the group, so it is the last to stop: the
/// senders that use the clients have finished by then.
struct HTTPClientShutdown: Service, CustomStringConvertible {
    let clients: [HTTPClient]

    func run() async throws {
        // Returns on graceful shutdown; throws on cancellation. The clients close either way.
        try? await gracefulShutdown()
        for client in clients { try await client.shutdown() }
    }

    var description: String { "HTTPClientShutdown" }

    /// Makes one client for each upstream; if one cannot be made, those made are shut down.
    static func makeClients(_ upstreams: [HTTPParticipantService.Configuration]) async throws -> [HTTPClient] {
        var clients: [HTTPClient] = []
        for upstream in upstreams {
            do {
                clients.append(try HTTPParticipantService.makeHTTPClient(upstream))
            } catch {
                for client in clients { try? await client.shutdown() }
                throw error
            }
        }
        return clients
    }
}
