import Foundation
import NIOSSL
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import ParticipantTestSupport
import Testing

@Suite struct UpstreamProxyTests {
    func resolve(_ environment: [String: String] = [:], endpoint: String = "https://participant.connect.eu-west-2.amazonaws.com",
                 proxy: String? = nil, noProxy: [String]? = nil) throws -> UpstreamProxy? {
        try UpstreamProxy.resolve(endpoint: endpoint, configured: proxy, noProxy: noProxy, environment: environment)
    }

    @Test("Proxies as the AWS CLI reads them: HTTPS_PROXY for https, HTTP_PROXY for http, the config over both")
    func environmentAndConfiguration() throws {
        #expect(try resolve() == nil)
        #expect(try resolve(["HTTPS_PROXY": "http://proxy.corp:3128"]) == UpstreamProxy(host: "proxy.corp", port: 3128))
        #expect(try resolve(["https_proxy": "http://lower:8080"]) == UpstreamProxy(host: "lower", port: 8080))
        #expect(try resolve(["HTTP_PROXY": "http://plain:3128"]) == nil, "HTTP_PROXY is not for https://")
        #expect(try resolve(["HTTP_PROXY": "http://plain:3128"], endpoint: "http://127.0.0.1:8787") == UpstreamProxy(host: "plain", port: 3128))
        #expect(try resolve(["HTTPS_PROXY": "http://env:2"], proxy: "http://configured:1") == UpstreamProxy(host: "configured", port: 1))
        #expect(try resolve(["HTTPS_PROXY": "http://noport"])?.port == 80)
    }

    @Test("Credentials in the URL are kept for Proxy-Authorization and never shown")
    func credentials() throws {
        let proxy = try #require(try resolve(["HTTPS_PROXY": "http://me:p%40ss@proxy:3128"]))
        #expect(proxy.username == "me" && proxy.password == "p@ss")
        #expect(proxy.description == "http://proxy:3128 (with credentials)")
        let error = #expect(throws: ConfigurationError.self) { try resolve(["HTTPS_PROXY": "https://me:secret@proxy:3128"]) }
        #expect(error?.key == "HTTPS_PROXY" && error?.rule.contains("http://") == true && error?.rule.contains("secret") == false)
        let bad = #expect(throws: ConfigurationError.self) { try resolve(proxy: "not a url") }
        #expect(bad?.key == "upstream.proxy")
    }

    @Test("NO_PROXY: host names, domain suffixes, host:port, *; upstream.noProxy replaces it", arguments: [
        ("participant.connect.eu-west-2.amazonaws.com", true),
        ("amazonaws.com", true), (".amazonaws.com", true), ("*.amazonaws.com", true), ("*", true),
        ("connect.eu-west-2.amazonaws.com:443", false), ("participant.connect.eu-west-2.amazonaws.com:8443", false),
        ("example.com", false), ("zonaws.com", false),
    ])
    func noProxy(pattern: String, bypassed: Bool) throws {
        let environment = ["HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "other.example, \(pattern)"]
        #expect((try resolve(environment) == nil) == bypassed, "\(pattern)")
        #expect((try resolve(["HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "*"], noProxy: [pattern]) == nil) == bypassed, "\(pattern)")
    }

    @Test("A CA file that is missing or not PEM stops the daemon naming upstream.caFile; caFileOnly needs one")
    func caFileErrors() async throws {
        var configuration = DaemonConfiguration()
        configuration.caFile = "/nonexistent/ca.pem"
        let missing = #expect(throws: ConfigurationError.self) { try configuration.upstream(environment: [:]) }
        #expect(missing?.key == "upstream.caFile" && missing?.rule.contains("no such file") == true)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "not a certificate".write(toFile: directory.path + "/ca.pem", atomically: true, encoding: .utf8)
        configuration.caFile = directory.path + "/ca.pem"
        let garbage = #expect(throws: ConfigurationError.self) { try configuration.upstream(environment: [:]) }
        #expect(garbage?.key == "upstream.caFile")
        let error = await #expect(throws: ConfigurationError.self) {
            try await ConfigurationSources.load(flags: [:], environment: ["PARTICIPANTD_UPSTREAM_CA_FILE_ONLY": "true"], configFile: nil)
        }
        #expect(error?.key == "upstream.caFileOnly")
    }
}

/// Real HTTPS to a stand-in whose certificate comes from a CA made in the test, and a real HTTP
/// proxy (tinyproxy) in between.
@Suite(.serialized) struct UpstreamTLSTests {
    func submit(_ daemon: TestDaemon, _ token: String) async throws {
        _ = try await daemon.client.submit(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: receipt("m-\(token)"), clientToken: token, connectionToken: "c-\(token)"
        ))
    }

    @Test("HTTPS with upstream.caFile delivers; without it nothing is sent, and the event and health say certificate")
    func privateCA() async throws {
        let ca = try await TestCertificateAuthority()
        defer { ca.remove() }
        let tls = try await ca.serverTLS(for: ["localhost"])
        try await TestDaemon.with(tls: tls, configure: { $0.caFile = ca.caFile }) { daemon in
            #expect(daemon.configuration.endpoint?.hasPrefix("https://localhost:") == true)
            try await submit(daemon, "trusted")
            _ = try await daemon.waitForEvent("trusted") { $0.state == .sent }
            #expect(daemon.logText.contains(ca.caFile + " (and the system's roots)"), "the ready line names the CA file")
        }
        // An attempt still in its failing handshake at the end need not hold the stop up for 10 s.
        // AsyncHTTPClient retries a failing connection until the request timeout: each attempt lasts
        // it, and reports the handshake's error only if one handshake failed within it (with 500 ms,
        // a suite loaded by the power-cut and other child-process tests saw a plain Timeout).
        try await TestDaemon.with(tls: tls, configure: { $0.shutdownTimeout = .milliseconds(200); $0.requestTimeout = .seconds(2) }) { daemon in
            try await submit(daemon, "untrusted")
            let record = try await daemon.waitForEvent("untrusted") { $0.lastError != nil }
            #expect(!record.state.isFinal, "it waits for a retry")
            #expect(record.lastError?.code == "TLSError")
            #expect(record.lastError?.message.contains("certificate") == true, "\(record.lastError?.message ?? "")")
            try await eventually(timeout: .seconds(20), "health degraded") { (try? await daemon.client.health().status) == "degraded" }
            let health = try await daemon.client.health()
            #expect(health.problems.contains { $0.contains("certificate") }, "\(health.problems)")
            // Once per outage, not once per attempt, at info and above.
            let lines = daemon.logs.entries.filter { $0.level >= .info && "\($0.message) \($0.metadata)".contains("certificate") }
            #expect(lines.count == 1, "\(lines.map(\.message))")
            #expect(daemon.standIn.requests.isEmpty)
        }
    }

    @Test("A certificate for another host name is refused, with caFile too")
    func otherHostName() async throws {
        let ca = try await TestCertificateAuthority()
        defer { ca.remove() }
        let tls = try await ca.serverTLS(for: ["other.example"])
        try await TestDaemon.with(tls: tls, configure: { $0.caFile = ca.caFile; $0.caFileOnly = true }) { daemon in
            try await submit(daemon, "wrong-name")
            let record = try await daemon.waitForEvent("wrong-name") { $0.lastError != nil }
            #expect(!record.state.isFinal && record.lastError?.code == "TLSError")
            #expect(record.lastError?.message.contains("certificate") == true, "\(record.lastError?.message ?? "")")
            #expect(daemon.standIn.requests.isEmpty)
        }
    }

    @Test("Through a real proxy: HTTPS_PROXY tunnels with CONNECT (the proxy's log shows it); NO_PROXY goes direct")
    func throughTheProxy() async throws {
        let ca = try await TestCertificateAuthority()
        defer { ca.remove() }
        let tls = try await ca.serverTLS(for: ["localhost"])
        try await TestProxy.with { proxy in
            try await TestDaemon.with(tls: tls, environment: ["HTTPS_PROXY": proxy.url], configure: { $0.caFile = ca.caFile }) { daemon in
                try await submit(daemon, "proxied")
                _ = try await daemon.waitForEvent("proxied") { $0.state == .sent }
                #expect(proxy.log.contains("CONNECT localhost:\(daemon.standIn.port)"), "\(proxy.log)")
                #expect(daemon.logText.contains("upstream.proxy") && daemon.logText.contains(proxy.url))
            }
            let before = proxy.log
            try await TestDaemon.with(tls: tls, environment: ["HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost"], configure: { $0.caFile = ca.caFile }) { daemon in
                try await submit(daemon, "direct")
                _ = try await daemon.waitForEvent("direct") { $0.state == .sent }
                #expect(!proxy.log.dropFirst(before.count).contains("CONNECT localhost:\(daemon.standIn.port)"))
            }
        }
    }

    @Test("Proxy credentials reach the proxy and no log or answer; a proxy that refuses gives a clear reason")
    func credentialsAndRefusals() async throws {
        let ca = try await TestCertificateAuthority()
        defer { ca.remove() }
        let tls = try await ca.serverTLS(for: ["localhost"])
        let password = "pr0xy-secret-\(UUID().uuidString.prefix(6))"
        try await TestProxy.with(["BasicAuth agent \(password)"]) { guarded in
            try await TestDaemon.with(tls: tls, configure: { $0.caFile = ca.caFile; $0.proxy = "http://agent:\(password)@127.0.0.1:\(guarded.port)" }) { daemon in
                try await submit(daemon, "with-credentials")
                _ = try await daemon.waitForEvent("with-credentials") { $0.state == .sent }
                #expect(!daemon.logText.contains(password))
                let health = try await daemon.client.health()
                #expect(!"\(health)".contains(password))
            }
            try await TestDaemon.with(tls: tls, configure: { $0.caFile = ca.caFile; $0.proxy = "http://127.0.0.1:\(guarded.port)" }) { daemon in
                try await submit(daemon, "no-credentials")
                let record = try await daemon.waitForEvent("no-credentials") { $0.lastError != nil }
                #expect(record.lastError?.code == "ProxyError")
                #expect(record.lastError?.message.contains("407") == true, "\(record.lastError?.message ?? "")")
            }
        }
        // Tunnels only to port 443: CONNECT to the stand-in's port is refused.
        try await TestProxy.with(["ConnectPort 443"]) { strict in
            try await TestDaemon.with(tls: tls, configure: { $0.caFile = ca.caFile; $0.proxy = strict.url }) { daemon in
                try await submit(daemon, "refused")
                let record = try await daemon.waitForEvent("refused") { $0.lastError != nil }
                #expect(record.lastError?.code == "ProxyError")
                #expect(record.lastError?.message.contains("refused CONNECT to localhost:\(daemon.standIn.port)") == true, "\(record.lastError?.message ?? "")")
                #expect(daemon.standIn.requests.isEmpty)
            }
        }
    }
}
