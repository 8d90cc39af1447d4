import ParticipantOutbox
import ParticipantWire
/// Where SendEvent goes: from the region as the service's endpoint rule set says, or a URL given
/// outright (a stand-in, a proxy).
public enum ServiceEndpoint {
    public struct Error: Swift.Error, Equatable, CustomStringConvertible {
        public var key: String
        public var rule: String
        public var description: String { "\(key): \(rule)" }
    }

    /// The endpoint URL, without a trailing slash.
    public static func resolve(region: String, endpoint: String?, fips: Bool, dualStack: Bool) throws(Error) -> String {
        if let endpoint, !endpoint.isEmpty {
            if fips || dualStack {
                throw Error(key: "endpoint", rule: "cannot be combined with fips or dualStack (a custom endpoint is used as it is)")
            }
            guard endpoint.hasPrefix("https://") || endpoint.hasPrefix("http://") else {
                throw Error(key: "endpoint", rule: "must be an http:// or https:// URL, got \"\(endpoint)\"")
            }
            let host = endpoint.drop(while: { $0 != "/" }).dropFirst(2).prefix(while: { $0 != "/" })
            guard !host.isEmpty else {
                throw Error(key: "endpoint", rule: "must name a host, got \"\(endpoint)\"")
            }
            var trimmed = endpoint
            while trimmed.hasSuffix("/") { trimmed.removeLast() }
            return trimmed
        }
        guard isRegionName(region) else {
            throw Error(key: "region", rule: "must be an AWS region name such as us-east-1, got \"\(region)\"")
        }
        // In aws-us-gov the plain name is already the FIPS endpoint.
        let service = fips && !region.hasPrefix("us-gov-") ? "participant.connect-fips" : "participant.connect"
        let suffix = dualStack ? "api.aws" : "amazonaws.com"
        return "https://\(service).\(region).\(suffix)"
    }

    static func isRegionName(_ region: String) -> Bool {
        let parts = region.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 3, let last = parts.last, !last.isEmpty, last.allSatisfy(\.isNumber) else { return false }
        return parts.dropLast().allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isLowercase && $0.isLetter } }
    }
}
