import CoreMetrics
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
@testable import ParticipantAPI
import ParticipantOutbox
import ParticipantTestSupport
import ParticipantWire
import Testing

/// The OpenAPI 3.1 description of the socket API (`openapi/participantd.openapi.json`): what the
/// daemon serves at `GET /v1/openapi.json`, naming exactly the routes the socket's router has,
/// every error code the API answers with, and its schemas resolvable. (schemathesis checks the
/// answers against it: SchemathesisTests.)
@Suite struct OpenAPITests {
    let clock = ManualClock()

    static var committed: String {
        get throws { try String(contentsOfFile: Repository.root + "/openapi/participantd.openapi.json", encoding: .utf8) }
    }

    static var document: [String: Any] {
        get throws { try #require(try JSONSerialization.jsonObject(with: Data(committed.utf8)) as? [String: Any]) }
    }

    /// The socket's API over `outbox`; with metrics, so that `GET /metrics` is one of its routes.
    static func api(_ outbox: Outbox) -> DaemonAPI {
        let delivery = RecordingDelivery()
        return DaemonAPI(
            outbox: outbox, configuration: APIConfiguration(), delivery: delivery,
            health: HealthCheck(outbox: outbox, maxWaitingAge: .seconds(300), delivery: delivery), access: .open,
            metrics: APIMetrics(factory: NOOPMetricsHandler.instance) { _ in "" }
        )
    }

    @Test("GET /v1/openapi.json serves the committed description, byte for byte (scripts/embed-openapi embeds it)")
    func served() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            let api = Self.api(outbox)
            let app = Application(router: api.router(), logger: Logger(label: "test"))
            try await app.test(.router) { client in
                let response = try await client.execute(uri: "/v1/openapi.json", method: .get)
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                #expect(String(buffer: response.body) == (try Self.committed), "the embedded description is stale: run scripts/embed-openapi")
            }
        }
    }

    @Test("The description's paths and methods are exactly the socket router's routes")
    func routesMatch() async throws {
        try await withTestOutbox(clock: clock) { outbox in
            let served = Set(Self.api(outbox).socketRoutes.map { "\($0.method.rawValue) \($0.path)" })
            let paths = try #require(try Self.document["paths"] as? [String: [String: Any]])
            let methods = ["get", "post", "put", "delete", "patch", "head"]
            let described = Set(paths.flatMap { path, item in item.keys.filter(methods.contains).map { "\($0.uppercased()) \(path)" } })
            #expect(served.count >= 23)
            #expect(served.subtracting(described).sorted() == [], "routes the description leaves out")
            #expect(described.subtracting(served).sorted() == [], "described routes the daemon does not have")
        }
    }

    @Test("Every error code the API answers with is in the description; every $ref resolves")
    func errorCodesAndReferences() throws {
        let text = try Self.committed
        let source = try String(contentsOfFile: Repository.root + "/Sources/ParticipantWire/ErrorBody.swift", encoding: .utf8)
        let codes = source.matches(of: /public static let \w+ = "(\w+)"/).map { String($0.1) }
        #expect(codes.count >= 15)
        for code in codes + ["NotFound", "InternalError", "StorageError", "ServiceUnavailable"] {
            #expect(text.contains(code), "\(code) is not in the description")
        }
        let components = try #require(try Self.document["components"] as? [String: [String: Any]])
        let references = text.matches(of: /"\$ref": "#\/components\/(schemas|responses)\/(\w+)"/)
        #expect(references.count > 50)
        for match in references {
            #expect(components[String(match.1)]?[String(match.2)] != nil, "\(match.1)/\(match.2) is referenced but not defined")
        }
        #expect((try Self.document["openapi"] as? String) == "3.1.0")
    }
}
