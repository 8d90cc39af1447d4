import AsyncHTTPClient
import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantServiceStandIn
import ParticipantWire
import ParticipantTestSupport
import Testing

/// `GET /metrics`: Prometheus text format, checked by a parser of the format written here (no
/// Prometheus tool is installed), and the counts it shows after real deliveries.
@Suite struct MetricsTests {
    @Test("/metrics parses as Prometheus text and counts accepted, sent, failed by code, superseded, retries, queue depth, latency")
    func metricsAfterDeliveries() async throws {
        let calls = Locked(0)
        let behavior: @Sendable (ParticipantServiceStandIn.ReceivedRequest) -> ParticipantServiceStandIn.Behavior = { request in
            switch request.bearer {
            case "refused": return .error(status: 400, code: "ValidationException", message: "no")
            case "flaky":
                let call = calls.withLock { $0 += 1; return $0 }
                return call == 1 ? .error(status: 503, code: "ServiceUnavailableException", message: "later") : .accept
            default: return .accept
            }
        }
        try await TestDaemon.with(behavior: behavior, configure: { $0.metricsListen = ListenAddress(host: "127.0.0.1", port: 0) }) { daemon in
            let client = daemon.client
            let read = EventContentType.messageRead.rawValue
            _ = try await client.submit(EventSubmission(contentType: read, content: receipt("m1"), clientToken: "ok-1", connectionToken: "fine"))
            _ = try await client.submit(EventSubmission(contentType: read, content: receipt("m1"), clientToken: "dup-1", connectionToken: "fine"))
            _ = try await client.submit(EventSubmission(contentType: read, content: receipt("m2"), clientToken: "bad-1", connectionToken: "refused"))
            _ = try await client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "flaky-1", connectionToken: "flaky"))
            for token in ["ok-1", "flaky-1"] { _ = try await daemon.waitForEvent(token) { $0.state == .sent } }
            _ = try await daemon.waitForEvent("bad-1") { $0.state == .failed }

            let (status, headers, body) = try await RawSocketClient(path: daemon.configuration.socketPath).requestWithHeaders(method: "GET", path: "/metrics")
            #expect(status == 200)
            #expect(headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            let samples = try PrometheusText.parse(String(decoding: body, as: UTF8.self))
            #expect(samples["participantd_events_accepted_total", ["content_type": "message.read", "kind": "event"]] == 3)
            #expect(samples["participantd_events_accepted_total", ["content_type": "typing", "kind": "event"]] == 1)
            #expect(samples["participantd_events_accepted_total", ["content_type": "message", "kind": "message"]] == 0)
            #expect(samples["participantd_events_sent_total", ["connect_instance": "default"]] == 2)
            #expect(samples["participantd_events_failed_total", ["code": "ValidationException", "connect_instance": "default"]] == 1)
            #expect(samples["participantd_events_superseded_total", [:]] == 1, "the duplicate receipt")
            #expect(samples["participantd_retries_total", ["code": "ServiceUnavailableException", "connect_instance": "default"]] == 1)
            #expect(samples["participantd_queue_events", ["state": "sent"]] == 2)
            #expect(samples["participantd_queue_events", ["state": "failed"]] == 1)
            #expect(samples["participantd_queue_events", ["state": "queued"]] == 0)
            #expect(samples["participantd_upstream_request_duration_seconds_count", ["connect_instance": "default"]] == 4)
            #expect((samples["participantd_sender_rounds_total", ["connect_instance": "default"]] ?? 0) > 0)
            #expect(samples["participantd_oldest_waiting_event_age_seconds", [:]] == 0)
            #expect((samples["participantd_uptime_seconds", [:]] ?? 0) > 0)
            #expect(samples["participantd_quota_tokens", ["connect_instance": "default"]] != nil && samples["participantd_quota_rate", ["connect_instance": "default"]] != nil)
            #expect(samples["participantd_upstream_outage", ["connect_instance": "default"]] == 0)
            #expect((samples["participantd_outbox_database_bytes", [:]] ?? 0) > 0)
            #expect(samples["participantd_outbox_database_limit_bytes", [:]] == Double(daemon.configuration.limits.maxDatabaseMegabytes * 1_048_576))
            #expect(samples["participantd_outbox_storage_full", [:]] == 0)
            #expect(samples["participantd_fleet_quota_shared", [:]] == nil, "no fleet, no gauge")

            // The same on the loopback TCP listener, and nothing else there.
            let line = try #require(daemon.logText.split(separator: "\n").first { $0.contains("participantd ready") })
            let address = try #require(line.firstMatch(of: /metrics.listen": 127\.0\.0\.1:(\d+)/)?.1)
            let (tcpStatus, tcpBody) = try await HTTPGet.get("http://127.0.0.1:\(address)/metrics")
            #expect(tcpStatus == 200)
            #expect(try PrometheusText.parse(tcpBody)["participantd_events_sent_total", ["connect_instance": "default"]] == 2)
            #expect(try await HTTPGet.get("http://127.0.0.1:\(address)/v1/health").0 == 404)
        }
    }

    /// `GET /metrics` on the daemon's socket, parsed.
    static func scrape(_ daemon: TestDaemon) async throws -> PrometheusText.Samples {
        let (status, _, body) = try await RawSocketClient(path: daemon.configuration.socketPath).requestWithHeaders(method: "GET", path: "/metrics")
        #expect(status == 200)
        return try PrometheusText.parse(String(decoding: body, as: UTF8.self))
    }

    @Test("The format checker refuses what Prometheus would")
    func checkerRefuses() {
        #expect(throws: PrometheusText.Invalid.self) { try PrometheusText.parse("bad metric 1\n") }
        #expect(throws: PrometheusText.Invalid.self) { try PrometheusText.parse("m{a=\"1} 2\n") }
        #expect(throws: PrometheusText.Invalid.self) { try PrometheusText.parse("# TYPE m counter\nm one\n") }
        #expect(throws: PrometheusText.Invalid.self) {
            try PrometheusText.parse("# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n")
        }
    }
}

/// The Prometheus text exposition format 0.0.4, strictly: comments, `name{label="value",...} value`,
/// TYPE before samples, histogram buckets cumulative up to `+Inf` equal to `_count`.
enum PrometheusText {
    struct Invalid: Error, CustomStringConvertible { var description: String }

    struct Samples {
        var values: [String: [[String: String]: Double]] = [:]
        subscript(name: String, labels: [String: String]) -> Double? { values[name]?[labels] }
        /// Every name with a sample (a histogram's as `_bucket`, `_sum`, `_count`).
        var names: Set<String> { Set(values.keys) }
    }

    static func parse(_ text: String) throws -> Samples {
        var samples = Samples()
        var types: [String: String] = [:]
        let name = /[a-zA-Z_:][a-zA-Z0-9_:]*/
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3)
                if parts.count >= 2, parts[1] == "TYPE" {
                    guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]),
                          (try? name.wholeMatch(in: String(parts[2]))) != nil
                    else { throw Invalid(description: "line \(number + 1): bad TYPE: \(line)") }
                    types[String(parts[2])] = String(parts[3])
                }
                continue
            }
            guard let match = line.prefixMatch(of: name) else { throw Invalid(description: "line \(number + 1): no metric name: \(line)") }
            let metric = String(match.output)
            var rest = line[match.range.upperBound...]
            var labels: [String: String] = [:]
            if rest.hasPrefix("{") {
                rest = rest.dropFirst()
                while !rest.hasPrefix("}") {
                    guard let labelName = rest.prefixMatch(of: /[a-zA-Z_][a-zA-Z0-9_]*="/) else {
                        throw Invalid(description: "line \(number + 1): bad label: \(line)")
                    }
                    rest = rest[labelName.range.upperBound...]
                    var value = ""
                    var closed = false
                    while let character = rest.first {
                        rest = rest.dropFirst()
                        if character == "\\" {
                            guard let escaped = rest.first else { break }
                            rest = rest.dropFirst()
                            value.append(escaped == "n" ? "\n" : escaped)
                        } else if character == "\"" {
                            closed = true
                            break
                        } else {
                            value.append(character)
                        }
                    }
                    guard closed else { throw Invalid(description: "line \(number + 1): unterminated label value: \(line)") }
                    labels[String(labelName.output.dropLast(2))] = value
                    if rest.hasPrefix(",") { rest = rest.dropFirst() }
                }
                rest = rest.dropFirst()
            }
            let fields = rest.split(separator: " ")
            guard (1...2).contains(fields.count), rest.hasPrefix(" ") else { throw Invalid(description: "line \(number + 1): bad value: \(line)") }
            let valueText = String(fields[0])
            guard let value = ["+Inf": Double.infinity, "-Inf": -Double.infinity, "NaN": Double.nan][valueText] ?? Double(valueText) else {
                throw Invalid(description: "line \(number + 1): not a number: \(valueText)")
            }
            let family = types.keys.first { metric == $0 || metric == $0 + "_bucket" || metric == $0 + "_sum" || metric == $0 + "_count" }
            if !types.isEmpty, family == nil {
                throw Invalid(description: "line \(number + 1): \(metric) has no TYPE line before it")
            }
            samples.values[metric, default: [:]][labels] = value
        }
        // Histograms: cumulative buckets, +Inf equals _count.
        for (family, type) in types where type == "histogram" {
            for (labels, count) in samples.values[family + "_count"] ?? [:] {
                let buckets = (samples.values[family + "_bucket"] ?? [:]).filter { key, _ in
                    key.filter { $0.key != "le" } == labels
                }.map { (le: $0.key["le"].flatMap { $0 == "+Inf" ? Double.infinity : Double($0) } ?? .nan, value: $0.value) }
                    .sorted { $0.le < $1.le }
                guard zip(buckets, buckets.dropFirst()).allSatisfy({ $0.value <= $1.value }), buckets.last?.le == .infinity,
                      buckets.last?.value == count
                else { throw Invalid(description: "histogram \(family) \(labels): buckets not cumulative up to +Inf = _count") }
            }
        }
        return samples
    }
}

/// A plain GET over TCP with AsyncHTTPClient.
enum HTTPGet {
    static func get(_ url: String) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), String(buffer: body))
    }
}
