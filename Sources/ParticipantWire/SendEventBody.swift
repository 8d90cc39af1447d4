#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// SendEvent's JSON body as the service takes it: `{"ContentType", "Content", "ClientToken"}`.
/// The connection token is not part of it: it travels as the `X-Amz-Bearer` header.
///
/// The sender encodes it for the service; `POST /participant/event` decodes it from AWS SDKs.
public struct SendEventBody: Codable, Sendable, Equatable {
    public var contentType: String?
    public var content: String?
    public var clientToken: String?

    enum CodingKeys: String, CodingKey {
        case contentType = "ContentType"
        case content = "Content"
        case clientToken = "ClientToken"
    }

    public init(contentType: String?, content: String? = nil, clientToken: String? = nil) {
        self.contentType = contentType
        self.content = content
        self.clientToken = clientToken
    }
}
