import Foundation
@testable import ParticipantDaemon
import ParticipantServiceStandIn
import ParticipantTestSupport
import ParticipantWire
import Testing

/// What operators copy into Prometheus and Grafana (`monitoring/`, installed under
/// /usr/share/participantd): the rules pass `promtool check rules` and their own
/// `promtool test rules` cases, and every metric the rules and the dashboard query is one a
/// running daemon serves.
@Suite struct MonitoringTests {
    static let folder = Repository.root + "/monitoring"

    static func promtool(_ arguments: [String]) async throws -> (Int32, String) {
        let path = try #require(["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                "promtool is not installed (scripts/ensure-test-tools installs the package prometheus)")
        let (status, output, errors) = try await ChildProcess.run("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", folder, path] + arguments)
        return (status, output + errors)
    }

    @Test("promtool check rules and promtool test rules pass: each alert fires where its case says, and only there")
    func rulesPass() async throws {
        let (checkStatus, check) = try await Self.promtool(["check", "rules", "participantd.rules.yml"])
        #expect(checkStatus == 0, "\(check)")
        let (testStatus, test) = try await Self.promtool(["test", "rules", "participantd.rules.test.yml"])
        #expect(testStatus == 0 && test.contains("SUCCESS"), "\(test)")
        // Every alert has a case.
        let rules = try String(contentsOfFile: Self.folder + "/participantd.rules.yml", encoding: .utf8)
        let cases = try String(contentsOfFile: Self.folder + "/participantd.rules.test.yml", encoding: .utf8)
        let alerts = rules.matches(of: /- alert: (\w+)/).map { String($0.1) }
        #expect(alerts.count >= 8)
        for alert in alerts { #expect(cases.contains("alertname: \(alert)"), "\(alert) has no promtool case") }
    }

    /// Every `participantd_...` name the rules and the dashboard query.
    static func queriedNames() throws -> Set<String> {
        let rules = try String(contentsOfFile: folder + "/participantd.rules.yml", encoding: .utf8)
        let dashboard = try String(contentsOfFile: folder + "/participantd.dashboard.json", encoding: .utf8)
        let json = try JSONSerialization.jsonObject(with: Data(dashboard.utf8)) as? [String: Any]
        let panels = try #require(json?["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(expressions.count >= 17)
        return Set((expressions + [rules]).flatMap { $0.matches(of: /participantd_[a-z0-9_]+/).map { String($0.0) } })
    }

    @Test("Every metric the rules and the dashboard query is served by a daemon that sent, failed, retried a 429, expired and lost its fleet's database")
    func everyQueriedMetricExists() async throws {
        let throttled = Locked(false)
        let behavior: @Sendable (ParticipantServiceStandIn.ReceivedRequest) -> ParticipantServiceStandIn.Behavior = { request in
            switch request.bearer {
            case "refused": return .error(status: 400, code: "ValidationException", message: "no")
            case "throttled":
                let first = throttled.withLock { seen in defer { seen = true }; return !seen }
                return first ? .error(status: 429, code: "ThrottlingException", message: "Rate exceeded") : .accept
            case "down", "still-down": return .error(status: 503, code: "ServiceUnavailableException", message: "later")
            // CreateParticipantConnection for an ended chat's participant token.
            case "ended-participant": return .error(status: 403, code: "AccessDeniedException", message: "ended")
            default: return .accept
            }
        }
        try await TestDaemon.with(behavior: behavior, configure: { configuration in
            configuration.deadlines.typing = .seconds(1)
            // Nothing listens there: the quota is not shared, and the gauge says so.
            configuration.fleet.postgresURL = "postgres://participantd@127.0.0.1:9/quota?sslmode=disable"
        }) { daemon in
            let client = daemon.client
            let read = EventContentType.messageRead.rawValue
            _ = try await client.submit(EventSubmission(contentType: read, content: receipt("m1"), clientToken: "ok", connectionToken: "fine"))
            _ = try await client.submit(EventSubmission(contentType: read, content: receipt("m2"), clientToken: "bad", connectionToken: "refused"))
            _ = try await client.submit(EventSubmission(contentType: read, content: receipt("m3"), clientToken: "slow", connectionToken: "throttled"))
            _ = try await client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "late", connectionToken: "down"))
            _ = try await client.submit(MessageSubmission(contentType: MessageContentType.plainText.rawValue, content: "hello", clientToken: "msg", connectionToken: "fine"))
            _ = try await client.submit(EventSubmission(contentType: read, content: receipt("m4"), clientToken: "ended", connectionToken: nil, participantToken: "ended-participant"))
            for token in ["ok", "slow", "msg"] { _ = try await daemon.waitForEvent(token, timeout: .seconds(20)) { $0.state == .sent } }
            for token in ["bad", "ended"] { _ = try await daemon.waitForEvent(token, timeout: .seconds(20)) { $0.state == .failed } }
            _ = try await daemon.waitForEvent("late", timeout: .seconds(20)) { $0.state == .expired }
            // One item still waiting, so that its user has a waiting count.
            _ = try await client.submit(EventSubmission(contentType: read, content: receipt("m5"), clientToken: "waiting", connectionToken: "still-down"))
            let samples = try await MetricsTests.scrape(daemon)
            let served = samples.names
            let missing = try Self.queriedNames().subtracting(served).sorted()
            #expect(missing.isEmpty, "queried but not served: \(missing); served: \(served.sorted())")
        }
    }
}
