import Foundation
import ParticipantWire

/// The HTTP proxy SendEvent goes through, decided once at start from the endpoint, the
/// configuration (`upstream.proxy`, `upstream.noProxy`) and the environment, as the AWS CLI reads
/// it: `HTTPS_PROXY`/`https_proxy` for an `https://` endpoint, `HTTP_PROXY`/`http_proxy` for an
/// `http://` one, and `NO_PROXY`/`no_proxy`. An HTTPS request goes through a `CONNECT` tunnel, so
/// the proxy sees the host name and never the connection token; TLS is end to end.
public struct UpstreamProxy: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// From the proxy URL's `user:password@`; sent as `Proxy-Authorization`, never shown.
    public var username: String?
    public var password: String?

    /// `http://host:port`, and whether credentials are set: never the credentials themselves.
    public var description: String {
        "http://\(host.contains(":") ? "[\(host)]" : host):\(port)" + (username == nil ? "" : " (with credentials)")
    }

    /// Parses `http://[user:password@]host[:port]` (port 80 when left out).
    /// - Parameter key: the key or variable it came from, for the error.
    public static func parse(_ text: String, key: String) throws(ConfigurationError) -> UpstreamProxy {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw ConfigurationError(key: key, rule: "must be a proxy URL such as http://proxy.example:3128, got \"\(redacted(text))\"")
        }
        guard scheme == "http" else {
            throw ConfigurationError(key: key, rule: "must be an http:// proxy URL (HTTPS to the service still goes through a CONNECT tunnel); \(scheme):// proxies are not supported")
        }
        guard url.path.isEmpty || url.path == "/", url.query == nil else {
            throw ConfigurationError(key: key, rule: "must be http://host:port without a path, got \"\(redacted(text))\"")
        }
        return UpstreamProxy(
            host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: url.port ?? 80,
            username: url.user.map { $0.removingPercentEncoding ?? $0 }, password: url.password.map { $0.removingPercentEncoding ?? $0 }
        )
    }

    /// The proxy for `endpoint`, or `nil` for a direct connection.
    /// - Parameters:
    ///   - configured: `upstream.proxy`; when set it replaces the environment's proxy variables.
    ///   - noProxy: `upstream.noProxy`; when set it replaces `NO_PROXY`.
    public static func resolve(
        endpoint: String, configured: String?, noProxy: [String]?, environment: [String: String]
    ) throws(ConfigurationError) -> UpstreamProxy? {
        guard let url = URLComponents(string: endpoint), let host = url.host?.lowercased() else { return nil }
        let secure = url.scheme?.lowercased() == "https"
        let variables = secure ? ["HTTPS_PROXY", "https_proxy"] : ["HTTP_PROXY", "http_proxy"]
        let source: (key: String, value: String)? = if let configured, !configured.isEmpty {
            ("upstream.proxy", configured)
        } else {
            variables.lazy.compactMap { name in environment[name].flatMap { $0.isEmpty ? nil : (name, $0) } }.first
        }
        guard let source else { return nil }
        let bypass = noProxy ?? (environment["NO_PROXY"] ?? environment["no_proxy"] ?? "")
            .split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        if bypasses(host: host, port: url.port, patterns: bypass) { return nil }
        return try parse(source.value, key: source.key)
    }

    /// Whether `NO_PROXY`'s patterns cover the host: `*`, the host itself, or a domain it is in
    /// (`example.com` and `.example.com` both cover `a.example.com`); a pattern with `:port` covers
    /// that port only.
    static func bypasses(host: String, port: Int?, patterns: [String]) -> Bool {
        for raw in patterns {
            var pattern = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if pattern.isEmpty { continue }
            if pattern == "*" { return true }
            if let colon = pattern.lastIndex(of: ":"), !pattern.hasSuffix("]"), let patternPort = Int(pattern[pattern.index(after: colon)...]) {
                guard patternPort == port else { continue }
                pattern = String(pattern[..<colon])
            }
            pattern = pattern.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            if pattern.hasPrefix("*.") { pattern.removeFirst() }
            let domain = pattern.hasPrefix(".") ? String(pattern.dropFirst()) : pattern
            if host == domain || host.hasSuffix("." + domain) { return true }
        }
        return false
    }

    /// The URL with any password replaced, for messages.
    static func redacted(_ text: String) -> String {
        guard var url = URLComponents(string: text), url.password != nil else { return text }
        url.password = "***"
        return url.string ?? "(a proxy URL)"
    }
}
